"""Each status says what was checked and when, or that nothing was (issue 19, item 5)."""

from __future__ import annotations

from app.api import create_app
from app.clm.drift_check import run_drift_check
from tests.conftest import API_TOKEN

TOKEN_HEADER = {"Authorization": f"Bearer {API_TOKEN}"}


def test_drift_status_of_an_empty_system_says_nothing_was_checked(sqlite_container) -> None:
    client = create_app(sqlite_container).test_client()
    drift = client.get("/api/clm/status").get_json()["drift"]
    assert drift["status"] == "NOT CHECKED YET" and drift["last_check"] is None
    assert drift["reason"] == "no drift check has run"
    assert "Nothing checked: no drift check has run" in client.get("/").get_data(as_text=True)


def test_a_check_that_found_nothing_to_check_says_so(sqlite_container) -> None:
    assert run_drift_check(sqlite_container) == {}  # no ACTIVE model
    client = create_app(sqlite_container).test_client()
    drift = client.get("/api/clm/status").get_json()["drift"]
    assert drift["status"] == "NOTHING CHECKED" and drift["last_check"] is not None
    assert drift["checked"] == [] and drift["reason"] == "no ACTIVE model to check"
    page = client.get("/").get_data(as_text=True)
    assert "NOTHING CHECKED" in page and "Nothing checked: no ACTIVE model to check" in page
    assert "NO DRIFT DETECTED" not in page


def test_posting_a_drift_check_returns_the_task_id_to_follow(sqlite_container) -> None:
    from workers.celery_app import configure
    from workers.celery_dispatcher import CeleryDispatcher

    sqlite_container.dispatcher = CeleryDispatcher(configure(sqlite_container.settings))  # eager: runs here
    response = create_app(sqlite_container).test_client().post("/api/drift/check", headers=TOKEN_HEADER)
    assert response.status_code == 202
    body = response.get_json()
    assert body["task"] == "tasks.drift.run_drift_check" and body["task_id"]
