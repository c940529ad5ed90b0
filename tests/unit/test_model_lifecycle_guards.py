"""Rollback keeps the lifecycle and checks the artifact; a broken artifact is a 503 naming the model;
retiring the ACTIVE model needs confirmation and then is an alert and a clear prediction answer."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.api import create_app
from app.core.db.models import ModelRegistry as ModelRow
from app.model_registry import ModelRegistry, RollbackRefusedError
from app.operations.alerts import current_alerts
from tests.api_fixtures import TOKEN_HEADER, synthetic_candles, train_naive

PREDICT = {"symbol": "BTC/USDT", "model_type": "naive"}


def _statuses(container) -> dict[str, str]:
    with container.session() as session:
        return dict(session.execute(select(ModelRow.model_id, ModelRow.status)).all())


def _flip_a_byte(container, model_id: str) -> None:
    """One byte of the model's stored files changed (not the manifest: the file it names)."""
    record = ModelRegistry(container).get_model(model_id)
    folder = container.artifacts.local_path(record.file_path).parent
    victim = next(p for p in sorted(folder.iterdir()) if p.is_file() and p.name != "manifest.json")
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))


@pytest.fixture
def models(sqlite_container) -> tuple[str, str, str]:
    """naive_v1 was ACTIVE, naive_v2 is ACTIVE (promoted), naive_v3 is SHADOW (never ACTIVE)."""
    v1 = train_naive(sqlite_container, seed=7)
    v2 = train_naive(sqlite_container, seed=8)
    ModelRegistry(sqlite_container).promote_shadow_to_active("naive")
    v3 = train_naive(sqlite_container, seed=9)
    assert _statuses(sqlite_container) == {v1: "RETIRED", v2: "ACTIVE", v3: "SHADOW"}
    return v1, v2, v3


def test_rollback_refuses_a_version_that_never_was_active(sqlite_container, models) -> None:
    _v1, _v2, v3 = models
    client = create_app(sqlite_container).test_client()
    before = _statuses(sqlite_container)
    refused = client.post("/api/model-types/naive/rollback", json={"version": "3"}, headers=TOKEN_HEADER)
    assert refused.status_code == 409 and "never was ACTIVE" in refused.get_json()["error"]
    with sqlite_container.session() as session:
        session.get(ModelRow, v3).status = "TRAINING"  # still in a running job
    training = client.post("/api/model-types/naive/rollback", json={"version": "3"}, headers=TOKEN_HEADER)
    assert training.status_code == 409 and "TRAINING" in training.get_json()["error"]
    assert _statuses(sqlite_container) == before | {v3: "TRAINING"}


def test_rollback_to_the_shadow_only_when_the_policy_allows_it(sqlite_container, models) -> None:
    _v1, _v2, _v3 = models
    with pytest.raises(RollbackRefusedError):
        ModelRegistry(sqlite_container).rollback("naive", 3)
    sqlite_container.policy_store.update({"clm_config": {"rollback_to_shadow": True}})
    assert ModelRegistry(sqlite_container).rollback("naive", 3).status == "ACTIVE"


def test_rollback_to_a_tampered_artifact_is_409_and_changes_nothing(sqlite_container, models) -> None:
    v1, _v2, _v3 = models
    _flip_a_byte(sqlite_container, v1)
    client = create_app(sqlite_container).test_client()
    before = _statuses(sqlite_container)
    response = client.post("/api/model-types/naive/rollback", json={"version": "1"}, headers=TOKEN_HEADER)
    assert response.status_code == 409 and "sha256" in response.get_json()["error"]
    assert _statuses(sqlite_container) == before


def test_a_tampered_active_artifact_is_503_naming_it_or_the_policys_fallback(sqlite_container, models) -> None:
    v1, v2, _v3 = models
    _flip_a_byte(sqlite_container, v2)
    client = create_app(sqlite_container).test_client()
    body = PREDICT | {"candles": synthetic_candles()}
    refused = client.post("/api/predictions", json=body, headers=TOKEN_HEADER)
    assert refused.status_code == 503, refused.get_json()
    assert v2 in refused.get_json()["error"] and refused.get_json()["details"] == {"model_id": v2}
    sqlite_container.policy_store.update({"clm_config": {"integrity_fallback": True}})
    served = client.post("/api/predictions", json=body, headers=TOKEN_HEADER)
    assert served.status_code == 200, served.get_json()
    assert served.get_json()["model_id"] == v1 and served.get_json()["shadow"] is None
    assert _statuses(sqlite_container)[v2] == "ACTIVE"  # serving falls back; the registry is unchanged


def test_a_tampered_shadow_artifact_does_not_fail_the_answer(sqlite_container, models) -> None:
    _v1, v2, v3 = models
    _flip_a_byte(sqlite_container, v3)
    client = create_app(sqlite_container).test_client()
    served = client.post("/api/predictions", json=PREDICT | {"candles": synthetic_candles()}, headers=TOKEN_HEADER)
    assert served.status_code == 200 and served.get_json()["model_id"] == v2 and served.get_json()["shadow"] is None


def test_retiring_the_active_model_needs_confirmation_then_alerts(sqlite_container, models) -> None:
    _v1, v2, v3 = models
    client = create_app(sqlite_container).test_client()
    before = _statuses(sqlite_container)
    refused = client.post(f"/api/models/{v2}/retire", json={"reason": "bad"}, headers=TOKEN_HEADER)
    assert refused.status_code == 409 and "confirm" in refused.get_json()["error"]
    assert _statuses(sqlite_container) == before
    with sqlite_container.session() as session:
        assert not [a for a in current_alerts(session) if a.name == "no_active_model"]
    retired = client.post(f"/api/models/{v2}/retire", json={"reason": "bad", "confirm": True}, headers=TOKEN_HEADER)
    assert retired.status_code == 200 and retired.get_json()["status"] == "RETIRED"
    with sqlite_container.session() as session:
        alerts = [a for a in current_alerts(session) if a.name == "no_active_model"]
    assert len(alerts) == 1 and alerts[0].severity == "critical" and "naive" in alerts[0].message
    answer = client.post("/api/predictions", json=PREDICT | {"candles": synthetic_candles()}, headers=TOKEN_HEADER)
    assert answer.status_code == 409 and "no ACTIVE model of type naive" in answer.get_json()["error"]
    # A SHADOW (not ACTIVE) model retires without confirmation.
    assert client.post(f"/api/models/{v3}/retire", json={"reason": "x"}, headers=TOKEN_HEADER).status_code == 200
