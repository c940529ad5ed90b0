"""The retraining canvas run eagerly in the embedded mode (SQLite, no broker), and beat's entries."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from app.core.policy import Policy
from app.retraining import RetrainingOrchestrator

DATA = Path(__file__).resolve().parent.parent / "data" / "ohlcv"
SPEC = {
    "source": "files",
    "symbols": ["BTC/USDT"],
    "timeframe": "1h",
    "files": {"BTC/USDT": str(DATA / "binance_BTCUSDT_1h.csv")},
    "start": "2021-01-01T00:00:00",
    "end": "2021-02-05T00:00:00",
}


@pytest.fixture
def eager(sqlite_container):  # type: ignore[no-untyped-def]
    from workers.celery_app import celery_app, configure
    from workers.celery_dispatcher import CeleryDispatcher

    configure(sqlite_container.settings)
    sqlite_container.dispatcher = CeleryDispatcher(celery_app)
    # The canvas's mechanics, not the models' quality: the baseline gate off, explicitly (its own tests:
    # test_training_gate.py); a naive model on five weeks of BTC would rightly be REJECTED.
    sqlite_container.policy_store.update(
        {"training": {"cv_folds": 2}, "clm_config": {"baseline_gate": {"enabled": False}}}, author="test"
    )
    yield RetrainingOrchestrator(sqlite_container)
    celery_app.conf.task_always_eager = False


def test_the_canvas_runs_eagerly_and_registers_twice_as_active_then_shadow(eager) -> None:
    from app.model_registry import ModelRegistry

    first = eager.get_job(eager.start_partial(["naive"], reason="test", spec=SPEC))
    assert first.status == "completed", first.error_message
    assert first.models["naive"]["registry_status"] == "ACTIVE" and first.progress_pct == 100.0
    second = eager.get_job(eager.start_partial(["naive"], reason="test", spec=SPEC))
    assert second.models["naive"]["registry_status"] == "SHADOW"
    # The same spec reuses the dataset the first job built.
    assert first.metadata["dataset_id"] == second.metadata["dataset_id"]
    registry = ModelRegistry(eager.container)
    assert registry.get_shadow_model("naive").model_id == second.models["naive"]["model_id"]


def test_a_bad_dataset_fails_the_job_with_the_reason(eager) -> None:
    job = eager.get_job(eager.start_partial(["naive"], spec=SPEC | {"files": {}}))
    assert job.status == "failed"
    assert job.error_message.startswith("dataset: ValueError: invalid dataset spec")
    assert "needs a file for every symbol" in job.error_message
    assert job.models["naive"]["error"].startswith("no dataset:")


def test_beat_schedules_weekly_retraining_and_the_stale_sweep(sqlite_container) -> None:
    from tasks.retraining import scheduled_full_retraining
    from workers.beat import build_beat_schedule

    schedule = build_beat_schedule(Policy())
    assert schedule["full-retraining"]["task"] == "tasks.retraining.scheduled_full_retraining"
    assert schedule["full-retraining"]["schedule"] == timedelta(days=7)
    assert schedule["stale-job-sweep"]["task"] == "tasks.retraining.close_stale_jobs"

    started = scheduled_full_retraining()  # inline dispatcher: the job stays running
    assert started["job_id"].startswith("RTN-")
    again = scheduled_full_retraining()  # the storm guard: the running job blocks every type
    assert again["started"] is False and again["job_id"] is None
    assert set(again["blocked_by"].values()) == {started["job_id"]}
