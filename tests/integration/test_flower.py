"""Flower against the test broker with a real worker: its own HTTP API shows the worker and a finished task."""

from __future__ import annotations

import base64
import contextlib
import json
import time
import urllib.error
import urllib.request

import pytest

from tests.e2e.processes import background, free_port
from tests.services import REPO, celery_worker

pytestmark = pytest.mark.integration

FLOWER_AUTH = "operator:flower-test-password"  # test-only credentials (Procfile and compose read FLOWER_BASIC_AUTH)


def procfile_command(name: str) -> str:
    lines = (REPO / "Procfile").read_text().splitlines()
    return next(line.split(":", 1)[1].strip() for line in lines if line.startswith(f"{name}:"))


def _get(url: str) -> object:
    token = base64.b64encode(FLOWER_AUTH.encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=15) as response:
        return json.loads(response.read())


def test_flower_shows_live_workers_and_a_finished_task(pg_container, worker_env, tmp_path) -> None:
    from tasks.maintenance import health_ping
    from workers.celery_app import configure

    configure(pg_container.settings)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # `make stack`'s own command (the Procfile's flower line), with test-friendly extras appended.
    cmd = ["sh", "-c", f"exec {procfile_command('flower')} --persistent=False --inspect_timeout=3000"]
    flower_env = worker_env | {"FLOWER_BASIC_AUTH": FLOWER_AUTH, "CLM_FLOWER_PORT": str(port)}
    with (
        celery_worker(worker_env, queues="default,cpu", name="flower-test@%h", log_path=tmp_path / "worker.log"),
        background(cmd, flower_env, tmp_path / "flower.log", f"{base}/healthcheck"),
    ):
        # Unauthenticated API calls are refused.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/api/workers", timeout=10)
        assert refused.value.code == 401
        deadline = time.monotonic() + 60
        workers: dict = {}
        while time.monotonic() < deadline and not any(n.startswith("flower-test@") for n in workers):
            workers = _get(f"{base}/api/workers?refresh=1")  # type: ignore[assignment]
            time.sleep(0.5)
        name = next(n for n in workers if n.startswith("flower-test@"))
        queues = {q["name"] for q in workers[name]["active_queues"]}
        assert queues == {"default", "cpu"}
        # Flower follows task events: a task sent now is seen from RECEIVED to SUCCESS.
        result = health_ping.apply_async(queue="cpu")
        answer = result.get(timeout=30)
        task: dict = {}
        while time.monotonic() < deadline and task.get("state") != "SUCCESS":
            tasks = _get(f"{base}/api/tasks?limit=50")
            task = tasks.get(result.id, {})  # type: ignore[union-attr]
            time.sleep(0.5)
        assert task["state"] == "SUCCESS", task
        assert task["name"] == "tasks.maintenance.health_ping" and task["worker"] == name
        assert str(answer["pid"]) in task["result"]
        # Prometheus scrapes Flower's /metrics (monitoring/prometheus.yml); the dashboard's Celery panels use these.
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        assert f'flower_worker_online{{worker="{name}"}} 1.0' in metrics
        assert 'type="task-succeeded"' in metrics and "flower_task_runtime_seconds_bucket" in metrics


def test_flower_sees_a_training_gpu_worker_and_a_failed_training(pg_container, worker_env, tmp_path) -> None:
    """The gpu queue's threads pool answers Flower's inspect calls while it trains; a failed training is FAILURE."""
    from app.retraining import RetrainingOrchestrator
    from tests.integration.test_retraining_workers import SPEC, TINY_TRAINING
    from workers.celery_app import celery_app, configure
    from workers.celery_dispatcher import CeleryDispatcher

    configure(pg_container.settings)
    pg_container.dispatcher = CeleryDispatcher(celery_app)
    # long enough to be seen running
    training = TINY_TRAINING | {"nhits": {"max_steps": 150, "input_size": 24, "val_check_steps": 50}}
    pg_container.policy_store.update({"training": training}, author="test")
    orchestrator = RetrainingOrchestrator(pg_container)
    env = worker_env | {"CLM_TRAIN_THREADS": "1", "CLM_DEVICE": "cpu"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = ["sh", "-c", f"exec {procfile_command('flower')} --persistent=False --inspect_timeout=3000"]
    flower_env = worker_env | {"FLOWER_BASIC_AUTH": FLOWER_AUTH, "CLM_FLOWER_PORT": str(port)}
    with (
        celery_worker(env, queues="default,cpu", name="fl-cpu@%h", log_path=tmp_path / "cpu.log"),
        celery_worker(env, queues="gpu", pool="threads", name="fl-gpu@%h", log_path=tmp_path / "gpu.log"),
        background(cmd, flower_env, tmp_path / "flower.log", f"{base}/healthcheck"),
    ):
        job_id = orchestrator.start_partial(["nhits"], reason="test", spec=SPEC)
        task_id = f"{job_id}.train.nhits"
        deadline = time.monotonic() + 120
        while orchestrator.get_job(job_id).models.get("nhits", {}).get("status") != "training":
            assert time.monotonic() < deadline, orchestrator.get_job(job_id)
            time.sleep(0.2)
        online: dict = {}
        task: dict = {}
        while time.monotonic() < deadline:
            # ?status=1: Flower pings every worker now; the training worker must answer
            online = _get(f"{base}/api/workers?status=1")  # type: ignore[assignment]
            with contextlib.suppress(urllib.error.HTTPError):  # 404 until Flower has seen the task
                task = _get(f"{base}/api/task/info/{task_id}")  # type: ignore[assignment]
            running = task.get("state") in ("STARTED", "PROGRESS")  # PROGRESS: the training reported a stage
            if any(n.startswith("fl-gpu@") and up for n, up in online.items()) and running:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"the training GPU worker is not online or its task not active in Flower: {online} {task}")
        assert orchestrator.get_job(job_id).models["nhits"]["status"] == "training", "seen only after training"
        assert task["worker"].startswith("fl-gpu@"), task
        # Progress inside the model: the job entry (API, CLI) and Flower's task state and result meta.
        # The final fit reports its stages (fit, storing) and, inside the fit, its training steps (at most
        # one write a second); its folds are tasks of their own.
        flower_seen: list[dict] = []
        entries_seen: list[dict] = []
        while time.monotonic() < deadline:
            answer = _get(f"{base}/api/task/info/{task_id}")
            if answer.get("state") == "PROGRESS" and answer.get("result"):  # type: ignore[union-attr]
                flower_seen.append(json.loads(answer["result"]))  # type: ignore[index]
            entry = orchestrator.get_job(job_id).models["nhits"]
            if entry["status"] != "training":
                break
            entries_seen.append(entry.get("progress") or {})
            if all(
                any(0 < (m.get("in_fit") or {}).get("done", 0) < 150 for m in seen)
                for seen in (flower_seen, entries_seen)
            ):
                break  # steps seen mid-fit in both places
            time.sleep(0.3)
        assert flower_seen and {m["model_type"] for m in flower_seen} == {"nhits"}, flower_seen
        assert {m["stage"] for m in flower_seen} <= {"fit", "storing"}, flower_seen
        steps_in_flower = [m["in_fit"] for m in flower_seen if m.get("in_fit")]
        steps_in_entry = [p["in_fit"] for p in entries_seen if p.get("in_fit")]
        for seen in (steps_in_flower, steps_in_entry):
            assert seen and all(s["unit"] == "steps" for s in seen), (flower_seen, entries_seen)
            assert [s["done"] for s in seen] == sorted(s["done"] for s in seen)  # steps only grow
            # seen during the fit, not only at its end
            assert any(0 < s["done"] < s["total"] == 150 for s in seen), seen
        workers = _get(f"{base}/api/workers?refresh=1&workername={task['worker']}")
        assert workers[task["worker"]]["stats"]["pool"]["implementation"].endswith("thread:TaskPool")  # type: ignore[index]

        # A training that fails (no candles in its window) is recorded in the job, and FAILURE in Flower.
        empty = SPEC | {"start": "2030-01-01T00:00:00", "end": "2030-01-29T00:00:00"}
        failed = orchestrator.start_partial(["naive"], reason="test", spec=empty)
        state: dict = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and state.get("state") != "FAILURE":
            with contextlib.suppress(urllib.error.HTTPError):  # 404 until Flower has seen it
                state = _get(f"{base}/api/task/info/{failed}.train.naive")  # type: ignore[assignment]
            time.sleep(0.5)
        assert state.get("state") == "FAILURE", state
        assert "TrainingFailed" in state["exception"] and "no dataset" in state["exception"]
        while not orchestrator.get_job(failed).finished and time.monotonic() < deadline:
            time.sleep(0.3)
        job = orchestrator.get_job(failed)
        assert job.status == "failed" and "no dataset" in job.models["naive"]["error"]  # closed by the errback
        while orchestrator.get_job(job_id).models["nhits"]["status"] == "training" and time.monotonic() < deadline:
            time.sleep(0.3)  # the nhits fit ends (its last line in the worker's log)
    gpu_log = (tmp_path / "gpu.log").read_text()
    assert "neural models will train on the CPU" in gpu_log  # said once, at start
    assert f"job {job_id}: nhits fit, steps 150 of 150" in gpu_log  # the worker logs the end of each fit
