"""A real `celery beat` reports its entries' last and next runs; GET /api/schedule reads them."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from app.api import create_app
from tests.services import REPO, stop_process

pytestmark = pytest.mark.integration


def test_beat_reports_its_schedule_to_the_api(pg_container, worker_env, tmp_path) -> None:
    pg_container.policy_store.ensure_default()
    cmd = [sys.executable, "-m", "celery", "-A", "workers.celery_app", "beat", "--schedule", str(tmp_path / "sched")]
    log = tmp_path / "beat.log"
    with open(log, "wb") as out:
        beat = subprocess.Popen(cmd, cwd=REPO, env=worker_env, stdout=out, stderr=subprocess.STDOUT)
    client = create_app(pg_container).test_client()
    try:
        deadline, schedule = time.monotonic() + 60, {}
        while time.monotonic() < deadline and not schedule.get("beat", {}).get("running"):
            schedule = client.get("/api/schedule").get_json()
            time.sleep(0.5)
        assert schedule["beat"]["running"], f"{schedule}\n{log.read_text()[-3000:]}"
    finally:
        stop_process(beat)
    entries = {e["name"]: e for e in schedule["entries"]}
    assert {"drift-check", "full-retraining", "stale-job-sweep", "event-delivery-sweep"} <= set(entries)
    assert all(e["next_run_at"] for e in entries.values()), entries
    assert entries["drift-check"]["last_run_at"] is None  # not run yet: none, not beat's start time
    assert entries["stale-job-sweep"]["interval_seconds"] == 60
