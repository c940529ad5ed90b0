"""The CLM dashboard in real headless Chromium, served by gunicorn from PostgreSQL: screenshot and DOM."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.api_fixtures import seed_clm_state
from tests.conftest import API_TOKEN
from tests.e2e.processes import api_server, browser, png_pixels

pytestmark = pytest.mark.e2e

SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def test_dashboard_in_headless_chromium(pg_container, worker_env, tmp_path) -> None:
    seed_clm_state(pg_container)
    env = worker_env | {"CLM_API_TOKEN": API_TOKEN}
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOT_DIR / "dashboard.png"
    shot.unlink(missing_ok=True)
    with api_server(env, tmp_path / "api.log") as base:
        dom = browser(f"{base}/", profile, "--virtual-time-budget=5000", "--dump-dom")
        taken = browser(f"{base}/", profile, "--window-size=1280,1400", f"--screenshot={shot}")
        docs = browser(f"{base}/docs", profile, "--virtual-time-budget=5000", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    # The script ran (the body is marked and the SVG charts have their marks) ...
    assert 'data-charts="drawn"' in html
    assert len(re.findall(r'class="drift-point"', html)) == 3
    assert len(re.findall(r'class="job-bar"', html)) == 2
    assert 'data-series="shadow"' in html and 'data-series="active"' in html
    # The job-duration axis: distinct ticks in one unit that fits the 45-minute job (was "1s 1s 1s 0s 0s").
    jobs_chart = html.split('id="chart-jobs"', 1)[1].split("</svg>", 1)[0]
    assert re.findall(r'class="y-tick"[^>]*>([^<]+)<', jobs_chart) == ["0min", "15min", "30min", "45min"]
    # Alerts carry their id and whether anyone acknowledged them.
    assert (
        re.search(r'data-alert="retraining_failed" data-alert-id="[0-9a-f]{12}"', html) and "not acknowledged" in html
    )
    # ... and the stored state is on the page.
    assert "RUNNING" in html and "CRITICAL DRIFT" in html
    assert "xgboost v3</b>: Testing (40/1000 samples)" in html
    assert "<td>position_sizing</td><td>v35</td><td>11</td>" in html
    assert 'data-job="RTN-20260102-001"' in html and "FAILED" in html
    assert taken.returncode == 0 and shot.exists(), taken.stderr[-2000:]
    width, height, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 1400)
    colours = {row[i : i + 3] for row in rows[::7] for i in range(0, len(row), 4 * 13)}
    assert len(colours) > 20, f"the screenshot looks blank ({len(colours)} colours)"
    # The docs page: every operation of /openapi.json, with its auth mark and readable parameter tables.
    assert docs.returncode == 0, docs.stderr[-2000:]
    operations = re.findall(r'<span class="method (\w+)">\w+</span><code>([^<]+)</code>', docs.stdout)
    assert ("post", "/api/jobs/retraining") in operations and ("patch", "/api/policy") in operations
    assert len(operations) >= 20 and "[bearer token]" in docs.stdout
    assert 'data-table="parameters"' in docs.stdout and "<td>integer, 1 to 200</td>" in docs.stdout
