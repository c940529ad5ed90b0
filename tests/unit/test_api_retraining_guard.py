"""POST /api/jobs/retraining goes through the CLM's storm guard; `force: true` overrides it, on the record."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.api import create_app
from app.core.db.models import Event, RetrainingJob
from tests.api_fixtures import TOKEN_HEADER, seed_clm_state


@pytest.fixture
def client(sqlite_container):
    seed_clm_state(sqlite_container)  # RTN-20260103-001: a full job (xgboost, lightgbm) still running
    return create_app(sqlite_container).test_client()


def _stored(container) -> tuple[int, int]:
    with container.session() as session:
        jobs = session.scalar(select(func.count()).select_from(RetrainingJob))
        events = session.scalar(select(func.count()).select_from(Event))
    return int(jobs or 0), int(events or 0)


@pytest.mark.parametrize(
    "body", [{"kind": "partial", "model_types": ["xgboost"]}, {"kind": "full"}], ids=["partial", "full"]
)
def test_a_request_blocked_by_a_running_job_is_409_naming_it(client, sqlite_container, body) -> None:
    before = _stored(sqlite_container)
    response = client.post("/api/jobs/retraining", json=body, headers=TOKEN_HEADER)
    assert response.status_code == 409, response.get_json()
    answer = response.get_json()
    assert "RTN-20260103-001" in answer["error"] and "force" in answer["error"]
    assert answer["details"]["blocked_by"]["xgboost"] == "RTN-20260103-001"
    assert _stored(sqlite_container) == before and sqlite_container.dispatcher.started == []


def test_force_starts_it_and_is_recorded_on_the_job(client, sqlite_container) -> None:
    body = {"kind": "partial", "model_types": ["xgboost"], "force": True, "reason": "hotfix"}
    response = client.post("/api/jobs/retraining", json=body, headers=TOKEN_HEADER)
    assert response.status_code == 202, response.get_json()
    job = client.get(response.get_json()["url"]).get_json()
    assert job["forced_over"] == {"xgboost": "RTN-20260103-001"} and job["trigger_reason"] == "hotfix"
    # The forced job blocks the next identical request in turn.
    again = client.post("/api/jobs/retraining", json=body | {"force": False}, headers=TOKEN_HEADER)
    assert again.status_code == 409 and job["job_id"] in again.get_json()["error"]


def test_a_request_in_the_cooldown_is_409(sqlite_container) -> None:
    client = create_app(sqlite_container).test_client()
    body = {"kind": "partial", "model_types": ["naive"]}
    first = client.post("/api/jobs/retraining", json=body, headers=TOKEN_HEADER)
    assert first.status_code == 202
    with sqlite_container.session() as session:
        row = session.get(RetrainingJob, first.get_json()["job_id"])
        row.status = "completed"
    second = client.post("/api/jobs/retraining", json=body, headers=TOKEN_HEADER)
    assert second.status_code == 409 and first.get_json()["job_id"] in second.get_json()["error"]
    unknown = client.post("/api/jobs/retraining", json={"kind": "partial", "model_types": ["gpt", "naive"]},
                          headers=TOKEN_HEADER)  # fmt: skip
    assert unknown.status_code == 422 and unknown.get_json()["details"][0]["field"] == "body.model_types"
