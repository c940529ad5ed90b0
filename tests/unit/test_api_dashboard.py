"""The CLM dashboard page renders the stored state (the browser test is tests/e2e/test_dashboard.py)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from app.api import create_app
from app.core.clock import utcnow
from app.operations.formatting import ago, duration
from tests.api_fixtures import seed_clm_state


def test_wording_of_times() -> None:
    now = utcnow()
    assert ago(now - timedelta(days=2, hours=3), now) == "2 days ago"
    assert ago(now + timedelta(days=5, minutes=1), now) == "in 5 days"
    assert ago(now - timedelta(minutes=12), now) == "12 minutes ago"
    assert ago(None) == "never"
    assert duration(2700) == "45min" and duration(3 * 3600 + 120) == "3h02m" and duration(None) == "-"


def test_dashboard_shows_every_part(sqlite_container) -> None:
    seed_clm_state(sqlite_container)
    page = create_app(sqlite_container).test_client().get("/").get_data(as_text=True)
    assert 'id="retraining-state" class="pill running">RUNNING' in page
    assert re.search(r'id="last-retraining">\d+ hours ago \(failed\)', page)
    assert re.search(r'data-model-type="xgboost">\s*<td>xgboost</td>\s*<td><b>v2</b>', page)
    assert "xgboost v3</b>: Testing (40/1000 samples)" in page
    assert '<tr data-rl="position_sizing"><td>position_sizing</td><td>v35</td><td>11</td>' in page
    assert "CRITICAL DRIFT" in page and 'data-alert="retraining_failed"' in page
    assert 'data-job="RTN-20260101-001"' in page and "45min" in page
    data = json.loads(re.search(r'<script id="chart-data" type="application/json">(.*?)</script>', page, re.S)[1])
    assert len(data["shadow_pnl"][0]["points"]) == 40
    assert [p["severity"] for p in data["drift_pvalues"]] == ["low", "high", "critical"]
    assert [j["seconds"] for j in data["job_durations"]] == [2700, 300]
    assert "http://" not in page.split("<body>")[0] and "cdn" not in page.lower()


def test_dashboard_of_an_empty_system(sqlite_container) -> None:
    page = create_app(sqlite_container).test_client().get("/").get_data(as_text=True)
    assert "IDLE" in page and "no models registered yet" in page and "NOT CHECKED YET" in page
