"""The distributed stack driven through its API: gunicorn + real Celery workers on PostgreSQL and Redis.

Trigger a retraining over HTTP, watch the job finish, see the model, ask it for a prediction,
report the trade's outcome, and find all of it in /metrics and on the dashboard.
"""

from __future__ import annotations

import time
import urllib.request

import pytest

from tests.api_fixtures import TOKEN_HEADER, synthetic_candles
from tests.conftest import API_TOKEN
from tests.e2e.processes import api_server, http_json
from tests.services import celery_worker

pytestmark = pytest.mark.e2e

SYNTHETIC = {"source": "synthetic", "symbols": ["BTC/USDT"], "timeframe": "1h", "lookback_days": 120, "seed": 3}


def _retrain(base: str, force: bool = False) -> dict:
    body = {"kind": "partial", "model_types": ["naive"], "reason": "e2e", "data": SYNTHETIC, "force": force}
    status, accepted = http_json(f"{base}/api/jobs/retraining", "POST", body, TOKEN_HEADER)
    assert status == 202, accepted
    deadline, job = time.monotonic() + 240, {}
    while time.monotonic() < deadline:
        status, job = http_json(f"{base}{accepted['url']}")
        assert status == 200
        if job["status"] not in ("pending", "running"):
            return job
        time.sleep(1.0)
    pytest.fail(f"job {accepted['job_id']} still {job.get('status')} at {job.get('progress_pct')}%")


def test_retraining_through_the_api_on_the_distributed_stack(pg_container, worker_env, tmp_path) -> None:
    pg_container.policy_store.ensure_default()
    env = worker_env | {"CLM_API_TOKEN": API_TOKEN}
    with (
        celery_worker(env, queues="default,cpu", name="e2e-cpu@%h", log_path=tmp_path / "cpu.log"),
        api_server(env, tmp_path / "api.log") as base,
    ):
        try:
            _drive(base)
        except AssertionError as exc:  # the processes' logs say why
            logs = "\n".join(f"--- {n} ---\n{(tmp_path / n).read_text()[-3000:]}" for n in ("api.log", "cpu.log"))
            raise AssertionError(f"{exc}\n{logs}") from exc


def _drive(base: str) -> None:
    """Trigger, watch, see the models, predict, report the outcome, promote, check, read metrics and page."""
    status, health = http_json(f"{base}/health")
    assert status == 200 and health["database"]["dialect"] == "postgresql" and health["broker"]["ok"]
    unauthorised, _ = http_json(f"{base}/api/jobs/retraining", "POST", {"kind": "full"})
    assert unauthorised == 401

    job = _retrain(base)
    assert job["status"] == "completed", job
    assert job["models_trained"]["naive"]["model_id"] == "naive_v1"
    _, listing = http_json(f"{base}/api/models?model_type=naive")
    assert [(m["model_id"], m["status"]) for m in listing["models"]] == [("naive_v1", "ACTIVE")]

    # Within the cooldown the storm guard refuses a second job, naming the first; force overrides it.
    status, refused = http_json(f"{base}/api/jobs/retraining", "POST", {"kind": "partial", "model_types": ["naive"]},
                                TOKEN_HEADER)  # fmt: skip
    assert status == 409 and job["job_id"] in refused["error"], refused
    second = _retrain(base, force=True)
    assert second["status"] == "completed" and second["forced_over"] == {"naive": job["job_id"]}
    _, shadow = http_json(f"{base}/api/models?model_type=naive&status=SHADOW")
    assert [m["model_id"] for m in shadow["models"]] == ["naive_v2"]

    body = {"symbol": "BTC/USDT", "model_type": "naive", "candles": synthetic_candles()}
    status, prediction = http_json(f"{base}/api/predictions", "POST", body, TOKEN_HEADER)
    assert status == 200, prediction
    assert prediction["model_id"] == "naive_v1" and prediction["shadow"]["model_id"] == "naive_v2"
    outcome = {"trade_id": "E2E-1", "pnl_pct": 0.7, "duration_hours": 3, "side": "LONG", "symbol": "BTC/USDT"}
    status, accepted = http_json(f"{base}/api/outcomes", "POST", outcome, TOKEN_HEADER)
    assert status == 202 and accepted["topic"] == "execution.trade.closed"
    status, evaluation = http_json(f"{base}/api/shadow/naive_v2")
    assert status == 200 and evaluation["recommendation"] == "CONTINUE_TESTING"

    status, promoted = http_json(f"{base}/api/model-types/naive/promote", "POST", {}, TOKEN_HEADER)
    assert status == 200 and promoted["model_id"] == "naive_v2" and promoted["status"] == "ACTIVE"

    status, sent = http_json(f"{base}/api/drift/check", "POST", None, TOKEN_HEADER)
    assert status == 202 and sent["last_check"] is None
    deadline, drift = time.monotonic() + 60, {}
    while time.monotonic() < deadline and not drift.get("last_check"):
        drift = http_json(f"{base}/api/clm/status")[1]["drift"]
        time.sleep(0.5)
    assert drift["last_check"], "the worker did not run the drift check"

    with urllib.request.urlopen(f"{base}/metrics", timeout=15) as response:
        metrics = response.read().decode()
    assert 'clm_retraining_jobs_total{job_type="partial",status="completed"} 2.0' in metrics
    assert 'clm_models{model_type="naive",status="ACTIVE"} 1.0' in metrics
    assert 'clm_prediction_latency_seconds_count{model_type="naive"} 1.0' in metrics  # one served, in a gunicorn worker
    with urllib.request.urlopen(f"{base}/", timeout=15) as response:
        page = response.read().decode()
    assert 'data-model-type="naive"' in page and "<b>v2</b>" in page
