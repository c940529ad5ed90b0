"""Walk-forward folds as tasks of their own (embedded store, the canvas run eagerly): the pooled
figures equal those of one in-process cross-validation, and a failing fold makes its model partial."""

from __future__ import annotations

import json

import pytest

from app.retraining import RetrainingOrchestrator
from tests.unit.training_helpers import BTC_FILES_SPEC, eager_orchestrator
from workers.celery_app import celery_app

SPEC = BTC_FILES_SPEC


@pytest.fixture
def eager(sqlite_container):  # type: ignore[no-untyped-def]
    yield eager_orchestrator(sqlite_container, cv_folds=3)
    celery_app.conf.task_always_eager = False


def test_the_folds_pooled_by_the_callback_equal_one_in_process_cross_validation(eager) -> None:
    from app.model_registry import ModelRegistry
    from app.model_training.service import train_model

    job = eager.get_job(eager.start_partial(["naive"], reason="test", spec=SPEC))
    assert job.status == "completed", job.error_message
    assert job.metadata["cv_folds"] == 3 and job.metadata["canvas_tasks"] == 2 + 4
    entry = job.models["naive"]
    assert sorted(entry["folds"]) == ["1", "2", "3"]
    assert all(f["status"] == "scored" and f["deliveries"] == 1 for f in entry["folds"].values())
    assert job.progress_pct == 100.0

    record = ModelRegistry(eager.container).get_model(entry["model_id"])
    in_one_process = train_model(eager.container, "naive", job.metadata["dataset_id"])
    assert json.dumps(record.metrics["cross_validation"], sort_keys=True) == json.dumps(
        in_one_process.metrics["cross_validation"], sort_keys=True
    )
    assert record.metrics["gate"] == in_one_process.metrics["gate"]
    assert record.metrics["cross_validation"]["folds"] == 3


def test_progress_counts_the_finished_tasks_of_the_whole_canvas(sqlite_container) -> None:
    from app.retraining import folds, jobs, steps

    sqlite_container.policy_store.update({"training": {"cv_folds": 2}}, author="test")
    orchestrator = RetrainingOrchestrator(sqlite_container)
    job_id = orchestrator.start_partial(["naive"], reason="test", spec=SPEC)  # inline: nothing runs
    assert orchestrator.get_job(job_id).metadata["canvas_tasks"] == 5  # dataset, fit, 2 folds, callback
    steps.prepare_dataset(sqlite_container, job_id)
    assert orchestrator.get_job(job_id).progress_pct == 20.0
    folds.train_fold(sqlite_container, job_id, "naive", 2)
    assert orchestrator.get_job(job_id).progress_pct == 40.0
    steps.train_one_model(sqlite_container, job_id, "naive")
    folds.train_fold(sqlite_container, job_id, "naive", 1)
    assert orchestrator.get_job(job_id).progress_pct == 80.0
    assert orchestrator.get_job(job_id).status == jobs.RUNNING


def test_failing_folds_make_the_model_partial_with_the_reason_and_the_job_ends(eager) -> None:
    from app.model_registry import ModelRegistry

    # 100 walk-forward folds need 303 timestamps; twenty days of 1h candles have fewer, so
    # every fold task raises (SplitError) while the final fit, on one split, succeeds.
    eager.container.policy_store.update({"training": {"cv_folds": 100}}, author="test")
    job = eager.get_job(eager.start_partial(["naive"], reason="test", spec=SPEC | {"end": "2021-01-21T00:00:00"}))

    assert job.finished and job.status == "failed"  # its only model has no walk-forward figures
    entry = job.models["naive"]
    assert entry["status"] == "partial"
    assert entry["error"].startswith("walk-forward incomplete: fold 1 of 100 failed: SplitError:")
    assert "too few for 100 walk-forward folds" in entry["error"]
    assert entry["folds"]["7"]["status"] == "failed" and "SplitError" in entry["folds"]["7"]["error"]
    assert "naive: walk-forward incomplete" in job.error_message
    # The final fit was staged, then rejected with the reason: nothing goes live on half the evidence.
    (model,) = ModelRegistry(eager.container).list_models("naive")
    assert model.model_id == entry["model_id"] and model.status == "REJECTED"
    assert job.progress_pct == 100.0
