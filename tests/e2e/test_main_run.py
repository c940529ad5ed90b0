"""The main run end to end, smaller: embedded (SQLite, eager Celery) and on the real stack
(PostgreSQL, Redis, Celery workers on the cpu and gpu queues, the simulated beat sending
through the broker). The story's milestones are asserted from the database, never from text.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

import workers.wsgi  # noqa: F401  (as the CLI entry point: installs the Celery dispatcher and the API)
from app.core.db.models import Event, ModelRegistry, RetrainingJob
from app.simulation.config import RunConfig
from app.simulation.run import RunResult, embedded_container, run_simulation

# Small and fast: two symbols, a short history, tiny models; the shift early in the replay.
SMALL = RunConfig(
    seed=11,
    symbols=("SYNA/USDT", "SYNB/USDT"),
    history_days=16.0,
    training_days=12.0,
    replay_days=6.0,
    shift_after_days=2.0,
    drift_checks_after_days=1.5,
    neural_every=4,
    min_shadow_samples=15,
    trees=15,
    neural_steps=3,
    schedule_interval_days=30.0,
    retraining_cooldown_hours=48.0,
    quiet=True,
)
MODEL_TYPES = {"xgboost", "lightgbm", "nhits", "patchtst"}


def assert_story(result: RunResult) -> None:
    story = result.story
    assert story is not None
    container = result.container
    shift_at = result.config.shift_at
    # 1. Initial training: every model type's first version went ACTIVE.
    assert set(story.initial_active) == MODEL_TYPES, story.initial_active
    # 2. The replay traded, and the trades reached the shadow tester, the RL agents and the supervisor.
    assert result.stats.trades_closed > 0
    with container.session_factory() as session:
        closed = session.scalar(select(func.count()).select_from(Event).where(Event.topic == "execution.trade.closed"))
        rl_updates = session.scalar(select(func.count()).select_from(Event).where(Event.topic == "rl.meta.updated"))
        jobs = session.scalars(select(RetrainingJob).order_by(RetrainingJob.started_at)).all()
        shadows = session.scalars(select(ModelRegistry).where(ModelRegistry.job_id != story.jobs[0]["job_id"])).all()
    assert closed == result.stats.trades_closed
    assert rl_updates and rl_updates <= closed
    # 3. Drift after the shift started a retraining, whose models went into shadow tests.
    assert story.drift_after_shift_at is not None and story.drift_after_shift_at >= shift_at
    job = story.retraining_after_drift
    assert job is not None and job["reason"].startswith("drift"), [j["reason"] for j in story.jobs]
    assert job["status"] in ("completed", "partial"), job
    assert any(j.job_type in ("full", "partial") and j.trigger_reason.startswith("drift") for j in jobs)
    registered = {m.model_id for m in shadows if m.job_id == job["job_id"]}
    assert registered and registered <= set(story.shadow_tests_started) | set(story.promoted) | set(story.rejected)
    # Each such model is still being tested, or the policy decided: promoted or rejected.
    for model in shadows:
        if model.job_id == job["job_id"]:
            assert model.status in ("SHADOW", "ACTIVE", "RETIRED", "REJECTED"), model.status
    # 4. The regime change reset both RL agents, their old tables archived.
    assert story.regime_changes, "no regime change detected"
    assert {r["topic"] for r in story.rl_resets} == {"rl.meta.reset", "rl.sizing.reset"}
    assert {v["rl_type"] for v in story.archived_rl_versions} == {"meta_strategy", "position_sizing"}


def test_main_run_embedded(tmp_path: Path) -> None:
    config = replace(SMALL, report_path=tmp_path / "report.html")
    container = embedded_container(config, root=tmp_path / "run")
    try:
        result = run_simulation(config, container=container)
    finally:
        container.dispose()
    assert_story(result)
    html = (tmp_path / "report.html").read_text()
    assert (
        "<svg" in html
        and "Timeline" in html
        and "http" not in html.split("<body>")[1].replace("http://www.w3.org/2000/svg", "")
    )


def test_main_run_on_the_real_stack(pg_container, pg_settings, worker_env, tmp_path: Path) -> None:
    """The same run with PostgreSQL, Redis and real workers: the beat's tasks and the retraining
    canvas go through the broker to the cpu and gpu queues; the driver waits for them before
    moving the simulated clock, which the workers and the API read from a shared file. The
    engine calls the API under gunicorn over HTTP, through the client library."""
    from quantum_trader_client import CLMClient

    from app.bootstrap import bootstrap, set_container
    from app.simulation.shared_clock import ENV, SharedSimulatedClock
    from tests.conftest import API_TOKEN
    from tests.e2e.processes import api_server
    from tests.services import celery_worker
    from workers.celery_app import celery_app, configure
    from workers.celery_dispatcher import CeleryDispatcher

    config = replace(SMALL, report_path=tmp_path / "report.html")
    clock = SharedSimulatedClock(config.replay_start, tmp_path / "clock")
    env = worker_env | {ENV: str(tmp_path / "clock"), "CLM_TRAIN_THREADS": "1"}
    configure(pg_settings)
    container = bootstrap(pg_settings, CeleryDispatcher(celery_app))
    set_container(container)
    try:
        with (
            celery_worker(env, queues="default,cpu", name="main-run-cpu@%h", log_path=tmp_path / "cpu.log"),
            celery_worker(env, queues="gpu", name="main-run-gpu@%h", log_path=tmp_path / "gpu.log"),
            api_server(env | {"CLM_API_TOKEN": API_TOKEN}, tmp_path / "api.log") as base,
            CLMClient(base, API_TOKEN, retries=0, timeout_s=120) as api,
        ):
            result = run_simulation(config, container=container, clock=clock, api=api)
            metrics = httpx.get(f"{base}/metrics", timeout=30).text
        assert_story(result)
        with container.session_factory() as session:
            jobs = session.scalars(select(RetrainingJob).where(RetrainingJob.job_type == "full")).all()
        queues = {entry.get("queue") for job in jobs for entry in (job.models_trained or {}).values()}
        assert {"cpu", "gpu"} <= queues, queues  # trained on the workers, by queue
        workers = {entry.get("worker") for job in jobs for entry in (job.models_trained or {}).values()}
        assert all(str(w).startswith("main-run-") for w in workers), workers
        # Every prediction the engine got was served by gunicorn (its metrics, summed over its workers).
        served = {
            s.labels["model_type"]: s.value
            for family in text_string_to_metric_families(metrics)
            if family.name == "clm_prediction_latency_seconds"
            for s in family.samples
            if s.name.endswith("_count")
        }
        assert served == {m: float(n) for m, n in result.stats.predictions.items()}, served
    finally:
        set_container(pg_container)
        container.dispose()
