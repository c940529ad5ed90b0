"""The model registry on the embedded SQLite store: statuses, history, events, rollback, retention."""

from __future__ import annotations

import json
import uuid

import pytest

from app.model_registry import ModelRegistry, NoShadowModelError, RegistryError


def _trained(container, model_type: str = "xgboost", accuracy: float = 0.5) -> dict:  # type: ignore[no-untyped-def]
    run = uuid.uuid4().hex[:8]
    stored = container.artifacts.put_bytes(
        f"models/{model_type}/{run}/forecaster.json", json.dumps({"run": run}).encode()
    )
    return {
        "model_type": model_type,
        "file_path": stored.path,
        "sha256": stored.sha256,
        "file_size_bytes": stored.size_bytes,
        "metrics": {"accuracy": accuracy},
    }


def _topics(container) -> list[str]:  # type: ignore[no-untyped-def]
    return [e["topic"] for e in reversed(container.bus.recent("model.*", limit=100))]


def test_first_model_is_active_then_shadows_and_promotion(sqlite_container) -> None:
    registry = ModelRegistry(sqlite_container)
    first = registry.register_model(_trained(sqlite_container))
    assert registry.get_active_model("xgboost").model_id == first
    assert registry.get_shadow_model("xgboost") is None

    second = registry.register_model(_trained(sqlite_container))
    third = registry.register_model(_trained(sqlite_container))  # supersedes the second as SHADOW
    assert registry.get_shadow_model("xgboost").model_id == third
    assert registry.get_model(second).status == "RETIRED"

    promoted = registry.promote_shadow_to_active("xgboost")
    assert promoted.model_id == third and promoted.status == "ACTIVE" and promoted.promoted_at
    assert registry.get_model(first).status == "RETIRED"
    assert registry.get_shadow_model("xgboost") is None
    with pytest.raises(NoShadowModelError, match="xgboost has no SHADOW"):
        registry.promote_shadow_to_active("xgboost")

    history = [(h["model_id"], h["old_status"], h["new_status"]) for h in registry.status_history("xgboost")]
    assert (first, "TRAINING", "ACTIVE") in history
    assert (third, "SHADOW", "ACTIVE") in history and (first, "ACTIVE", "RETIRED") in history
    assert [m.version for m in registry.list_models("xgboost")] == ["3", "2", "1"]
    assert [m.model_id for m in registry.list_models(status="active")] == [third]
    topics = _topics(sqlite_container)
    assert topics.count("model.registered") == 3 and topics.count("model.promoted") == 1
    assert topics.count("model.retired") == 2


def test_rollback_reactivates_an_earlier_version(sqlite_container) -> None:
    registry = ModelRegistry(sqlite_container)
    v1 = registry.register_model(_trained(sqlite_container, "lightgbm"))
    v2 = registry.register_model(_trained(sqlite_container, "lightgbm"))
    registry.promote_shadow_to_active("lightgbm")
    back = registry.rollback("lightgbm", "v1")
    assert back.model_id == v1 and back.status == "ACTIVE"
    assert registry.get_model(v2).status == "RETIRED"
    assert registry.status_history("lightgbm")[-1]["reason"] == "rollback to v1"
    with pytest.raises(RegistryError, match="has no version '9'"):
        registry.rollback("lightgbm", 9)


def test_retention_keeps_live_models_and_the_newest_retired(sqlite_container) -> None:
    registry = ModelRegistry(sqlite_container, keep_retired=2)
    ids = [registry.register_model(_trained(sqlite_container, "nhits"))]
    for _ in range(5):
        ids.append(registry.register_model(_trained(sqlite_container, "nhits")))
        registry.promote_shadow_to_active("nhits")
    records = {i: registry.get_model(i) for i in ids}
    assert records[ids[-1]].status == "ACTIVE"
    exists = {i: sqlite_container.artifacts.exists(r.file_path) for i, r in records.items()}
    # v6 ACTIVE; v5 and v4 the newest retired; v1..v3 lose their files but keep their rows.
    assert [exists[i] for i in ids] == [False, False, False, True, True, True]
    assert "deleted by retention" in (records[ids[0]].notes or "")
    with pytest.raises(RegistryError, match=r"artifact .* is gone"):
        registry.rollback("nhits", 1)
    assert registry.rollback("nhits", 4).status == "ACTIVE"


def test_bad_trained_input_is_refused_with_the_reason(sqlite_container) -> None:
    with pytest.raises(RegistryError, match="needs model_type and file_path"):
        ModelRegistry(sqlite_container).register_model({"model_type": "xgboost"})
