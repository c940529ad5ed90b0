"""The CLM dashboard page renders the stored state (the browser test is tests/e2e/test_dashboard.py)."""

from __future__ import annotations

import itertools
import json
import re
from datetime import timedelta

from app.api import create_app
from app.core.clock import utcnow
from app.operations.formatting import ago, duration, duration_axis
from tests.api_fixtures import seed_clm_state


def test_wording_of_times() -> None:
    now = utcnow()
    assert ago(now - timedelta(days=2, hours=3), now) == "2 days ago"
    assert ago(now + timedelta(days=5, minutes=1), now) == "in 5 days"
    assert ago(now - timedelta(minutes=12), now) == "12 minutes ago"
    assert ago(None) == "never"
    assert duration(2700) == "45min" and duration(3 * 3600 + 120) == "3h02m" and duration(None) == "-"


def _labels(seconds: float) -> list[str]:
    return [t["label"] for t in duration_axis(seconds)["ticks"]]


def test_duration_axis_has_distinct_nice_ticks_in_a_unit_that_fits() -> None:
    # The reported axis of 1.3 s jobs read "1s 1s 1s 0s 0s"; now each tick is a distinct step.
    assert _labels(1.3) == ["0s", "0.5s", "1s", "1.5s"]
    assert _labels(0.3) == ["0s", "0.1s", "0.2s", "0.3s"]
    assert _labels(100) == ["0s", "30s", "60s", "90s", "120s"]
    assert _labels(1000) == ["0min", "5min", "10min", "15min", "20min"]
    assert _labels(3 * 3600 + 5) == ["0h", "1h", "2h", "3h", "4h"]
    assert _labels(0) == ["0s", "0.25s", "0.5s", "0.75s", "1s"]  # no duration yet: a 1-second axis
    for peak in (0.05, 0.7, 1.3, 7, 59, 61, 179, 181, 599, 3601, 7199, 7200, 50_000, 10**6, 10**8):
        axis = duration_axis(peak)
        seconds = [t["seconds"] for t in axis["ticks"]]
        labels = [t["label"] for t in axis["ticks"]]
        steps = {round(b - a, 6) for a, b in itertools.pairwise(seconds)}
        assert len(set(labels)) == len(labels) and 2 <= len(labels) <= 5, (peak, labels)
        assert len(steps) == 1 and seconds[0] == 0 and axis["top"] == seconds[-1] >= peak, (peak, seconds)
        assert axis["top"] < 2.6 * peak or peak < 0.1, (peak, axis["top"])  # the bars fill the chart
        assert len({label.lstrip("0123456789.") for label in labels}) == 1, labels  # one unit per axis


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
    axis = data["job_duration_axis"]  # the y-axis of the longest job, 45 min: in minutes
    assert axis["top"] >= 2700 and [t["label"] for t in axis["ticks"]] == ["0min", "15min", "30min", "45min"]
    assert "http://" not in page.split("<body>")[0] and "cdn" not in page.lower()


def test_dashboard_of_an_empty_system(sqlite_container) -> None:
    page = create_app(sqlite_container).test_client().get("/").get_data(as_text=True)
    assert "IDLE" in page and "no models registered yet" in page and "NOT CHECKED YET" in page
