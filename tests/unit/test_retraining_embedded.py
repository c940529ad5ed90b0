"""The retraining canvas run eagerly in the embedded mode (SQLite, no broker), and beat's entries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.core.policy import Policy
from tests.unit.training_helpers import BTC_FILES_SPEC, eager_orchestrator
from workers.celery_app import celery_app

SPEC = BTC_FILES_SPEC


@pytest.fixture
def eager(sqlite_container):  # type: ignore[no-untyped-def]
    yield eager_orchestrator(sqlite_container, cv_folds=2)
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
