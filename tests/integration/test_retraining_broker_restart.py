"""A Redis restart mid-job loses the chord's state and the queued tasks: the job still closes.

The test runs its own Redis on a spare port (no persistence, as the stack's), real Celery
workers on it, and restarts it after one training has finished and while the other runs:
the chord's counter then never reaches its size and its callback never comes, and the fold
tasks still queued are forgotten. The lost-task sweep (run here every 2 s, as beat runs it every
minute) sends the never-started tasks again once no task has beaten for `task_heartbeat_minutes`;
the last task closes the job from the job's own records (`steps.close_if_done`), long before
the stale-job sweep (`stale_job_minutes`, 120 by default) would.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from app.core.settings import Settings
from app.model_registry import ModelRegistry
from app.retraining import RetrainingOrchestrator
from tests.integration.test_retraining_workers import SPEC, TINY_TRAINING
from tests.services import celery_worker, service_env, stop_process

pytestmark = pytest.mark.integration

HEARTBEAT_MINUTES = 0.1  # a task silent 6 s is lost; a live one beats every second


def _spare_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_redis(port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """A Redis server on `port` without persistence (as the stack's): a restart forgets everything."""
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with open(log_path, "ab") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                client.ping()
                return proc
            except redis.ConnectionError:
                assert time.monotonic() < deadline and proc.poll() is None, log_path.read_text()[-2000:]
                time.sleep(0.05)
    finally:
        client.close()


def _wait(orchestrator, job_id: str, wanted: dict[str, str], timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        models = orchestrator.get_job(job_id).models
        if all(models.get(m, {}).get("status") == s for m, s in wanted.items()):
            return
        time.sleep(0.05)
    pytest.fail(f"{job_id}: never {wanted}: {orchestrator.get_job(job_id).models}")


def test_a_job_closes_when_redis_restarted_during_its_training(pg_container, pg_settings, tmp_path) -> None:
    from workers.celery_app import celery_app, configure
    from workers.celery_dispatcher import CeleryDispatcher

    port = _spare_port()
    broker, backend = f"redis://127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/1"
    settings = Settings(
        CLM_MODE="distributed", DATABASE_URL=pg_settings.database_url, CELERY_BROKER_URL=broker,
        CELERY_RESULT_BACKEND=backend, ARTIFACT_ROOT=pg_settings.artifact_root,
    )  # fmt: skip
    env = service_env(settings.database_url, broker, backend, settings.artifact_root) | {
        "CLM_TRAIN_THREADS": "1",
        "CLM_DEVICE": "cpu",
    }
    # xgboost trains for seconds, naive at once: the restart falls between their ends.
    pg_container.policy_store.update(
        {
            # Folds as tasks of their own (the default): those still queued at the restart are lost with it.
            "training": TINY_TRAINING | {"xgboost": {"n_estimators": 400}, "fold_tasks": True},
            "clm_config": {"baseline_gate": {"enabled": False}, "task_heartbeat_minutes": HEARTBEAT_MINUTES},
        },
        author="test",
    )
    orchestrator = RetrainingOrchestrator(pg_container)
    servers = [_start_redis(port, tmp_path / "redis.log")]
    try:
        configure(settings)
        pg_container.dispatcher = CeleryDispatcher(celery_app)
        with celery_worker(env, queues="default,cpu", pool="threads", concurrency=2, log_path=tmp_path / "w.log"):
            job_id = orchestrator.start_partial(["naive", "xgboost"], reason="test", spec=SPEC)
            _wait(orchestrator, job_id, {"naive": "trained", "xgboost": "training"})
            stop_process(servers[0], grace_seconds=5)  # the chord's counter (naive's part) is gone
            servers.append(_start_redis(port, tmp_path / "redis.log"))
            restarted = time.monotonic()
            job = orchestrator.get_job(job_id)
            while not job.finished and time.monotonic() - restarted < 120:
                # Sent through the restarted broker to the worker, as beat sends it (no result awaited: this
                # process's result-store subscription would outlive the test's Redis).
                celery_app.tasks["tasks.retraining.close_stale_jobs"].apply_async(ignore_result=True)
                time.sleep(2)
                job = orchestrator.get_job(job_id)
            closed_after = time.monotonic() - restarted
    finally:
        configure(pg_settings)
        for server in servers:
            stop_process(server, grace_seconds=5)

    assert job.status == "completed", (job.error_message, job.models)
    assert {m: e["status"] for m, e in job.models.items()} == {"naive": "registered", "xgboost": "registered"}
    folds = {(m, k): f for m, e in job.models.items() for k, f in e["folds"].items()}
    assert sorted(folds) == [("naive", "1"), ("naive", "2"), ("xgboost", "1"), ("xgboost", "2")]
    assert all(f["status"] == "scored" for f in folds.values()), folds
    resent = sorted(f"{m}:{k}" for (m, k), f in folds.items() if f.get("resent"))
    resent += sorted(m for m, e in job.models.items() if e.get("resent"))
    print(f"\njob closed {closed_after:.1f}s after the restart; sent again after it: {resent or 'nothing'}")
    assert all((f.get("resent") or 0) <= 2 for f in folds.values())  # within max_task_deliveries (3) sends
    registry = ModelRegistry(pg_container)
    assert {m: registry.get_active_model(m).job_id for m in ("naive", "xgboost")} == {
        "naive": job_id,
        "xgboost": job_id,
    }
    assert closed_after < 120  # the sweep would take stale_job_minutes (120 min)
