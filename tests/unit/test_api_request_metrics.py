"""Per-endpoint request metrics on /metrics: labelled by URL rule, method and status; per app or across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from app.api import create_app
from tests.api_fixtures import TOKEN_HEADER

REPO = Path(__file__).resolve().parents[2]


def _samples(text: str, name: str) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["endpoint"], s.labels["method"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_requests_are_counted_and_timed_by_url_rule_method_and_status(sqlite_container) -> None:
    client = create_app(sqlite_container).test_client()
    assert client.get("/api/models").status_code == 200
    assert client.get("/api/models/no_such_model").status_code == 404
    assert client.get("/api/models/another_missing_one").status_code == 404
    assert client.get("/api/jobs?limit=0").status_code == 422
    assert client.post("/api/jobs/retraining", json={"kind": "weekly"}, headers=TOKEN_HEADER).status_code == 422
    assert client.get("/no/such/path").status_code == 404
    assert client.open("/api/models", method="BREW").status_code == 405

    text = client.get("/metrics").get_data(as_text=True)
    counts = _samples(text, "clm_api_requests_total")
    assert counts == {
        ("/api/models", "GET", "200"): 1.0,
        ("/api/models/<model_id>", "GET", "404"): 2.0,  # one series for every id: the rule, not the path
        ("/api/jobs", "GET", "422"): 1.0,
        ("/api/jobs/retraining", "POST", "422"): 1.0,
        ("<unmatched>", "GET", "404"): 1.0,
        ("<unmatched>", "OTHER", "405"): 1.0,  # an invented method is not a label value either
    }
    durations = _samples(text, "clm_api_request_duration_seconds_count")
    assert durations == counts
    buckets = {
        s.labels["le"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "clm_api_request_duration_seconds_bucket" and s.labels["endpoint"] == "/api/models/<model_id>"
    }
    assert buckets["+Inf"] == 2.0 and buckets["30.0"] == 2.0
    assert "no_such_model" not in text and "no/such/path" not in text
    # the CLM's own metrics are still there, and the scrape itself is counted on the next one
    assert "clm_database_up 1.0" in text
    again = _samples(client.get("/metrics").get_data(as_text=True), "clm_api_requests_total")
    assert again[("/metrics", "GET", "200")] == 1.0


def test_each_app_counts_only_its_own_requests(sqlite_container) -> None:
    first, second = create_app(sqlite_container).test_client(), create_app(sqlite_container).test_client()
    first.get("/api/models")
    text = second.get("/metrics").get_data(as_text=True)
    assert _samples(text, "clm_api_requests_total") == {}


WORKER = textwrap.dedent(
    """
    import sys
    from app.bootstrap import bootstrap
    from app.core.dispatch import InlineDispatcher
    from app.core.settings import Mode, Settings
    from app.api import create_app

    database, artifacts, requests = sys.argv[1], sys.argv[2], int(sys.argv[3])
    settings = Settings(CLM_MODE=Mode.EMBEDDED, DATABASE_URL=database, ARTIFACT_ROOT=artifacts, CLM_API_TOKEN="t")
    client = create_app(bootstrap(settings, InlineDispatcher(), migrate=True)).test_client()
    for _ in range(requests):
        assert client.get("/api/models/missing").status_code == 404
    if requests == 0:
        sys.stdout.write(client.get("/metrics").get_data(as_text=True))
    """
)


def test_with_a_multiprocess_directory_every_process_is_summed(tmp_path) -> None:
    """As two gunicorn workers: each writes its own samples, a scrape of either sees both."""
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLM_", "DATABASE_URL", "ARTIFACT_ROOT"))}
    env |= {"PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(REPO)}
    database, artifacts = f"sqlite:///{tmp_path / 'clm.sqlite'}", str(tmp_path / "artifacts")

    def run(requests: int) -> str:
        args = [sys.executable, "-c", WORKER, database, artifacts, str(requests)]
        done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    run(2)
    run(3)
    assert len(list(directory.glob("*.db"))) >= 2  # one file set per process
    text = run(0)
    counts = _samples(text, "clm_api_requests_total")
    assert counts[("/api/models/<model_id>", "GET", "404")] == 5.0
    assert _samples(text, "clm_api_request_duration_seconds_count")[("/api/models/<model_id>", "GET", "404")] == 5.0
    assert "clm_database_up 1.0" in text
