"""One owner of promotion: the shadow tester decides, `promotion.carry_out` acts, events report it."""

from __future__ import annotations

from app.model_registry import ModelRegistry
from app.shadow_tester.promotion import ShadowDecision, carry_out


def _decision(shadow_id: str, recommendation: str, auto_promote: bool, active_id: str) -> ShadowDecision:
    return ShadowDecision(shadow_id, "xgboost", recommendation, "test", auto_promote, active_id, {"n": 1})  # type: ignore[arg-type]


def _pair(container) -> tuple[str, str]:
    registry = ModelRegistry(container)
    active = registry.register_model({"model_type": "xgboost", "file_path": "m/a.json", "sha256": "0" * 64})
    shadow = registry.register_model({"model_type": "xgboost", "file_path": "m/b.json", "sha256": "1" * 64})
    return active, shadow


def test_a_recommendation_without_auto_promotion_is_left_to_the_operator(sqlite_container) -> None:
    active, shadow = _pair(sqlite_container)
    assert carry_out(sqlite_container, _decision(shadow, "PROMOTE", False, active)) is False
    registry = ModelRegistry(sqlite_container)
    # The recommendation was delivered (embedded: at once) and no handler promoted on it.
    assert sqlite_container.bus.recent("shadow.promotion.recommended")
    assert registry.get_model(shadow).status == "SHADOW" and registry.get_model(active).status == "ACTIVE"
    assert not sqlite_container.bus.recent("model.promoted")


def test_promotion_and_its_events_are_one_transaction(sqlite_container) -> None:
    active, shadow = _pair(sqlite_container)
    assert carry_out(sqlite_container, _decision(shadow, "PROMOTE", True, active)) is True
    registry = ModelRegistry(sqlite_container)
    assert registry.get_model(shadow).status == "ACTIVE" and registry.get_model(active).status == "RETIRED"
    promoted = sqlite_container.bus.recent("shadow.promoted")
    assert [e["payload"]["previous_model_id"] for e in promoted] == [active]
    # Acted on once: the same decision again finds no shadow and does nothing.
    assert carry_out(sqlite_container, _decision(shadow, "PROMOTE", True, active)) is False
    assert len(sqlite_container.bus.recent("model.promoted")) == 1


def test_rejection_and_a_stale_decision(sqlite_container) -> None:
    active, shadow = _pair(sqlite_container)
    assert carry_out(sqlite_container, _decision(shadow, "CONTINUE_TESTING", True, active)) is False
    assert ModelRegistry(sqlite_container).get_model(shadow).status == "SHADOW"
    assert carry_out(sqlite_container, _decision(shadow, "REJECT", True, active)) is False
    assert ModelRegistry(sqlite_container).get_model(shadow).status == "REJECTED"
    assert carry_out(sqlite_container, _decision(shadow, "PROMOTE", True, active)) is False
    assert not sqlite_container.bus.recent("shadow.promotion.recommended")
