"""Retraining jobs on the embedded store: ids, cancel, stale-job sweep, delivery cap, closing rules."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from app.core.clock import SimulatedClock
from app.retraining import RetrainingOrchestrator, closing, folds, jobs, steps
from tests.clocks import simulated_clock


@pytest.fixture
def clock() -> Iterator[SimulatedClock]:
    with simulated_clock(datetime(2026, 3, 4, 12, 0)) as simulated:
        yield simulated


def test_jobs_are_numbered_per_day_and_dispatched_after_commit(sqlite_container, clock) -> None:
    orchestrator = RetrainingOrchestrator(sqlite_container)
    first = orchestrator.start_full(reason="manual")
    second = orchestrator.start_partial(["xgboost"], reason="drift_detected")
    assert (first, second) == ("RTN-20260304-001", "RTN-20260304-002")
    clock.advance(timedelta(days=1))
    assert orchestrator.start_partial(["naive"]) == "RTN-20260305-001"

    job = orchestrator.get_job(first)
    assert job.status == "running" and job.job_type == "full" and job.stage == "queued"
    assert job.model_types == ["xgboost", "lightgbm", "nhits", "patchtst"]
    assert job.metadata["spec"]["symbols"] == ["BTC/USDT", "ETH/USDT"]
    assert [s[0] for s in sqlite_container.dispatcher.started] == [first, second, "RTN-20260305-001"]
    assert [e["payload"]["job_id"] for e in sqlite_container.bus.recent("clm.retraining.started")][-1] == first


def test_bad_model_types_are_refused_before_anything_is_stored(sqlite_container) -> None:
    orchestrator = RetrainingOrchestrator(sqlite_container)
    with pytest.raises(ValueError, match=r"unknown model types \['gbm'\]"):
        orchestrator.start_partial(["gbm"])
    with pytest.raises(ValueError, match="non-empty list"):
        orchestrator.start_partial([])
    assert orchestrator.list_jobs() == []


def test_cancel_closes_the_job_and_later_steps_do_nothing(sqlite_container) -> None:
    orchestrator = RetrainingOrchestrator(sqlite_container)
    job_id = orchestrator.start_partial(["naive"])
    cancelled = orchestrator.cancel(job_id, "operator changed their mind")
    assert cancelled.status == "cancelled" and cancelled.error_message == "operator changed their mind"
    assert steps.prepare_dataset(sqlite_container, job_id) == {"job_id": job_id, "skipped": "cancelled"}
    assert steps.train_one_model(sqlite_container, job_id, "naive")["skipped"] == "cancelled"
    assert closing.finalize_job(sqlite_container, job_id)["skipped"]
    assert orchestrator.get_job(job_id).status == "cancelled"
    completed = sqlite_container.bus.recent("clm.retraining.completed")
    assert [e["payload"]["status"] for e in completed] == ["cancelled"]


def test_a_job_whose_tasks_vanished_is_closed_with_the_reason(sqlite_container, clock) -> None:
    orchestrator = RetrainingOrchestrator(sqlite_container)
    job_id = orchestrator.start_partial(["naive", "xgboost"])
    fresh = orchestrator.start_partial(["naive"])
    with sqlite_container.session() as session:  # one task reported, the other was lost
        row = jobs.lock_job(session, job_id)
        jobs.set_model_result(row, "naive", status="failed", error="ValueError: boom")
        jobs.set_model_result(row, "xgboost", status="training", worker="cpu@host", pid=123)
    clock.advance(timedelta(minutes=121))
    jobs.touch(sqlite_container, fresh)  # still beating: left alone

    assert orchestrator.close_stale_jobs() == [job_id]
    job = orchestrator.get_job(job_id)
    assert job.status == "failed" and job.completed_at and job.duration_seconds == 121 * 60
    assert job.models["naive"]["error"] == "ValueError: boom"
    assert "no heartbeat" in job.models["xgboost"]["error"] and "worker lost" in job.error_message
    assert orchestrator.get_job(fresh).status == "running"
    assert orchestrator.close_stale_jobs() == []


def test_a_task_that_keeps_killing_its_worker_is_given_up(sqlite_container) -> None:
    sqlite_container.policy_store.update({"clm_config": {"max_task_deliveries": 2}}, author="test")
    orchestrator = RetrainingOrchestrator(sqlite_container)
    job_id = orchestrator.start_partial(["naive"])
    with sqlite_container.session() as session:  # two deliveries started and died with their worker
        row = jobs.lock_job(session, job_id)
        jobs.set_metadata(row, dataset_id="ds-1", deliveries={"naive": 2})
        jobs.set_model_result(row, "naive", status="training", worker="cpu@host", pid=4242)
    result = steps.train_one_model(sqlite_container, job_id, "naive", queue="cpu", worker="cpu@host")
    assert result["status"] == "failed"
    assert re.search(r"given up after 2 deliveries: .* died each time .*pid 4242", result["error"])
    outcome = closing.finalize_job(sqlite_container, job_id)
    assert outcome["status"] == "failed" and "given up after 2 deliveries" in outcome["errors"]["naive"]
    # A redelivery after the job closed changes nothing.
    assert steps.train_one_model(sqlite_container, job_id, "naive")["skipped"] == "failed"


def test_re_running_finished_steps_registers_nothing_twice(sqlite_container) -> None:
    from pathlib import Path

    from app.model_registry import ModelRegistry

    data = Path(__file__).resolve().parent.parent / "data" / "ohlcv" / "binance_BTCUSDT_1h.csv"
    spec = {
        "source": "files",
        "symbols": ["BTC/USDT"],
        "timeframe": "1h",
        "files": {"BTC/USDT": str(data)},
        "start": "2021-01-01T00:00:00",
        "end": "2021-02-05T00:00:00",
    }
    # Idempotence of the steps, not the model's quality: the baseline gate off, explicitly.
    gate_off = {"clm_config": {"baseline_gate": {"enabled": False}}}
    sqlite_container.policy_store.update({"training": {"cv_folds": 2}} | gate_off, author="test")
    orchestrator = RetrainingOrchestrator(sqlite_container)
    job_id = orchestrator.start_partial(["naive"], spec=spec)
    dataset = steps.prepare_dataset(sqlite_container, job_id)
    trained = steps.train_one_model(sqlite_container, job_id, "naive", queue="cpu", worker="w1")
    assert trained["status"] == "trained", trained
    scored = [folds.train_fold(sqlite_container, job_id, "naive", k, queue="cpu", worker="w1") for k in (1, 2)]
    assert [f["status"] for f in scored] == ["scored", "scored"], scored
    # Redeliveries of finished steps (and a second chord callback) find their work done.
    assert steps.prepare_dataset(sqlite_container, job_id)["dataset_id"] == dataset["dataset_id"]
    assert steps.train_one_model(sqlite_container, job_id, "naive", queue="cpu", worker="w2") == trained
    assert [folds.train_fold(sqlite_container, job_id, "naive", k, worker="w2") for k in (1, 2)] == scored
    assert closing.finalize_job(sqlite_container, job_id)["status"] == "completed"
    assert closing.finalize_job(sqlite_container, job_id)["skipped"]
    assert steps.train_one_model(sqlite_container, job_id, "naive")["skipped"] == "completed"

    models = ModelRegistry(sqlite_container).list_models("naive")
    assert [m.model_id for m in models] == [trained["model_id"]] and models[0].status == "ACTIVE"
    job = orchestrator.get_job(job_id)
    assert job.metadata["deliveries"] == {"naive": 1} and job.models["naive"]["worker"] == "w1"
    assert [job.models["naive"]["folds"][k]["deliveries"] for k in ("1", "2")] == [1, 1]
    assert len(sqlite_container.bus.recent("clm.retraining.completed")) == 1


def test_rl_maintenance_is_recorded_as_a_job(sqlite_container) -> None:
    orchestrator = RetrainingOrchestrator(sqlite_container)
    job = orchestrator.get_job(orchestrator.run_rl_maintenance())
    assert job.job_type == "rl_maintenance" and job.status == "completed", job.error_message
    assert isinstance(job.metadata["report"], dict) and job.progress_pct == 100.0


def test_a_models_share_of_the_progress_grows_with_its_cv_folds() -> None:
    from app.retraining.jobs import model_fraction

    assert model_fraction({"status": "training"}) == 0.0
    assert model_fraction({"status": "training", "progress": {"stage": "fit", "done": 0, "total": 1}}) == 0.0
    assert model_fraction({"status": "training", "progress": {"stage": "cv fold 2 of 3", "done": 2, "total": 3}}) == 0.5
    assert model_fraction({"status": "training", "progress": {"stage": "storing", "done": 1, "total": 1}}) == 0.95
    assert model_fraction({"status": "trained"}) == model_fraction({"status": "failed"}) == 1.0


def test_trees_or_steps_inside_a_fit_move_the_share_within_that_fit() -> None:
    from app.retraining.jobs import model_fraction, progress_label

    def entry(stage: str, done: int, total: int, inner: tuple[int, int] | None) -> dict:
        progress = {"stage": stage, "done": done, "total": total}
        if inner is not None:
            progress["in_fit"] = {"unit": "trees", "done": inner[0], "total": inner[1]}
        return {"status": "training", "progress": progress}

    # The final fit is the first of 4 fits (3 folds follow): half its trees is an eighth of the model.
    assert model_fraction(entry("fit", 0, 4, (150, 300))) == 0.125
    assert model_fraction(entry("fit", 0, 1, (30, 300))) == 0.1  # folds apart: the fit is all of the task
    # Fold 2 of 3 starts at 2/4; its trees fill the quarter up to 3/4, never past it.
    assert model_fraction(entry("cv fold 2 of 3", 2, 3, (0, 300))) == 0.5
    assert model_fraction(entry("cv fold 2 of 3", 2, 3, (150, 300))) == 0.625
    assert model_fraction(entry("cv fold 2 of 3", 2, 3, (120, 120))) == 0.75  # an early stop ends the fit
    assert progress_label(entry("cv fold 2 of 3", 2, 3, (150, 300))["progress"]) == "cv fold 2 of 3, trees 150 of 300"
    assert progress_label({"stage": "storing", "done": 1, "total": 1}) == "storing"


def test_tasks_that_never_started_are_sent_again_when_no_job_beats_then_given_up(sqlite_container, clock) -> None:
    """A broker that lost its queued messages: the sweep resends never-started final fits and folds
    once no running job has beaten for task_heartbeat_minutes, within the cap, then fails them."""
    store = sqlite_container.policy_store
    store.update(
        {"training": {"cv_folds": 2}, "clm_config": {"max_task_deliveries": 2, "task_heartbeat_minutes": 3}},
        author="test",
    )
    orchestrator = RetrainingOrchestrator(sqlite_container)
    job_id = orchestrator.start_partial(["naive", "xgboost"])
    waiting = orchestrator.start_partial(["naive"])  # its dataset step has not run: nothing sent yet
    busy = orchestrator.start_partial(["naive"])
    with sqlite_container.session() as session:  # naive's final fit and fold 1 ran; the rest never started
        row = jobs.lock_job(session, job_id)
        jobs.set_metadata(row, dataset_id="ds-1")
        jobs.set_model_result(row, "naive", status="trained")
        folds.set_fold_result(row, "naive", 1, status="scored", deliveries=1)
    sent = len(sqlite_container.dispatcher.started)
    clock.advance(timedelta(minutes=4))
    jobs.touch(sqlite_container, busy)  # a worker busy on another job: unstarted tasks may only be queued
    assert orchestrator.sweep_lost_tasks() == []
    assert len(sqlite_container.dispatcher.started) == sent

    orchestrator.cancel(busy, "done with it")
    clock.advance(timedelta(minutes=4))
    resent = orchestrator.sweep_lost_tasks()
    assert sorted((t.model_type, t.fold, t.action) for t in resent) == [
        ("naive", 2, "redelivered"),
        ("xgboost", 0, "redelivered"),
        ("xgboost", 1, "redelivered"),
        ("xgboost", 2, "redelivered"),
    ]
    assert sorted(sqlite_container.dispatcher.started[sent:], key=str) == sorted(
        [
            ("retry_fold", ["naive"], {"job_id": job_id, "fold": 2}),
            ("retry_training", ["xgboost"], {"job_id": job_id}),
            ("retry_fold", ["xgboost"], {"job_id": job_id, "fold": 1}),
            ("retry_fold", ["xgboost"], {"job_id": job_id, "fold": 2}),
        ],
        key=str,
    )
    job = orchestrator.get_job(job_id)
    assert job.models["xgboost"]["status"] == "redelivered" and job.models["xgboost"]["resent"] == 1
    assert job.models["naive"]["folds"]["2"]["status"] == "redelivered"
    assert orchestrator.get_job(waiting).models == {}
    assert orchestrator.sweep_lost_tasks() == []  # sent again less than a limit ago

    # A resent fold that starts is left alone; what is still silent a limit later is past the cap of 2 sends.
    with sqlite_container.session() as session:
        row = jobs.lock_job(session, job_id)
        folds.set_fold_result(row, "naive", 2, status="training", deliveries=1)
    clock.advance(timedelta(minutes=4))
    given_up = orchestrator.sweep_lost_tasks()
    assert sorted((t.model_type, t.fold, t.action) for t in given_up) == [("xgboost", 0, "failed")]
    job = orchestrator.get_job(job_id)
    error = job.models["xgboost"]["error"]
    assert "never started" in error and "given up after 2 of 2 sends" in error and job.status == "running"

    # The naive fold finishes: every task has an outcome, and the sweep closes the job with the reasons.
    with sqlite_container.session() as session:
        row = jobs.lock_job(session, job_id)
        folds.set_fold_result(row, "naive", 2, status="failed", error="ValueError: boom")
    orchestrator.sweep_lost_tasks()
    job = orchestrator.get_job(job_id)
    assert job.status == "failed" and "xgboost: never started" in job.error_message
