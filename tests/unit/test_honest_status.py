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


def test_the_schedule_without_beat_says_beat_has_not_reported(sqlite_container) -> None:
    client = create_app(sqlite_container).test_client()
    schedule = client.get("/api/schedule").get_json()
    assert schedule["enabled"] is True and schedule["beat"]["running"] is False
    assert "beat has not reported" in schedule["beat"]["reason"]
    entries = {e["name"]: e for e in schedule["entries"]}
    assert {"full-retraining", "drift-check", "stale-job-sweep"} <= set(entries)
    assert (
        entries["drift-check"]["interval_seconds"] == 6 * 3600 and entries["stale-job-sweep"]["interval_seconds"] == 60
    )
    assert all(e["last_run_at"] is None and e["next_run_at"] is None for e in entries.values())
    page = client.get("/").get_data(as_text=True)
    assert 'data-schedule="drift-check"' in page and "<td>6 hours</td>" in page
    assert 'Next scheduled: <b id="next-retraining">unknown: beat has not reported' in page
    assert "(every 7 days)" in page


def test_the_schedule_shows_what_beat_reported(sqlite_container) -> None:
    from datetime import timedelta

    from click.testing import CliRunner

    from app.cli.main import cli
    from app.core.clock import utcnow
    from app.core.system import set_flag
    from app.operations.schedule import BEAT_FLAG

    now = utcnow()
    entries = {
        "drift-check": {
            "task": "tasks.drift.run_drift_check",
            "interval_seconds": 21600,
            "last_run_at": (now - timedelta(hours=1)).isoformat(),
            "next_run_at": (now + timedelta(hours=5)).isoformat(),
        },
        "event-delivery-sweep": {"task": "tasks.events.deliver_events", "interval_seconds": 30, "last_run_at": None}
        | {"next_run_at": (now + timedelta(seconds=20)).isoformat()},
    }
    with sqlite_container.session() as session:
        set_flag(session, BEAT_FLAG, True, {"at": now.isoformat(), "entries": entries})
    schedule = create_app(sqlite_container).test_client().get("/api/schedule").get_json()
    assert schedule["beat"]["running"] is True
    got = {e["name"]: e for e in schedule["entries"]}
    assert got["drift-check"]["next_run_at"].startswith((now + timedelta(hours=5)).isoformat()[:16])
    assert got["event-delivery-sweep"]["interval_seconds"] == 30 and got["full-retraining"]["last_run_at"] is None
    out = CliRunner().invoke(cli, ["schedule"]).output
    assert "drift-check" in out and "1 hour ago" in out and "in 4 hours" in out and "30 seconds" in out
