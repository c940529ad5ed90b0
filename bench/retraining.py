"""Benchmark: the retraining canvas through real Celery workers, PostgreSQL and Redis.

1. Full retraining (XGBoost, LightGBM, N-HiTS, PatchTST) of 2 symbols x 59 days of real 1h
   Binance candles (tests/data), on a prebuilt dataset, every training task limited to one
   thread (CLM_TRAIN_THREADS=1, CLM_DEVICE=cpu). Baseline: ONE solo worker consuming every
   queue. Then TWO solo workers as deployed (`default,cpu` and `gpu`). Hyperparameters are
   chosen so the cpu pair and the gpu pair take about as long (stated in the output).
2. Canvas overhead: end-to-end time of a retraining job whose training is trivial (`naive`),
   minus the time spent inside its dataset and training steps; median of several jobs.
3. Load: N (1000) such trivial jobs pushed through the real broker to two worker processes;
   every job must end, none lost.

Usage: python bench/retraining.py [--load-jobs 1000] [--overhead-jobs 7]
       python bench/retraining.py --scale seed [--symbols 50 --days 180] [--workers 1,2]
(the seed-scale job, bench/seed_scale.py: 50 symbols x 180 days of 5m candles through the
candle store and real workers with the policy's defaults; a reduced scale with --symbols/--days).
Needs PostgreSQL and Redis on 127.0.0.1 (Redis dbs CLM_BENCH_REDIS_DB and +1, default 11/12).
Last output line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DATA = REPO / "tests" / "data" / "ohlcv"
FILES = {"BTC/USDT": str(DATA / "binance_BTCUSDT_1h.csv"), "ETH/USDT": str(DATA / "binance_ETHUSDT_1h.csv")}
FULL_SPEC = {
    "source": "files",
    "symbols": ["BTC/USDT", "ETH/USDT"],
    "timeframe": "1h",
    "files": FILES,
    "start": "2021-01-01T00:00:00",
    "end": "2021-03-01T00:00:00",
}
TRIVIAL_SPEC = FULL_SPEC | {
    "symbols": ["BTC/USDT"],
    "files": {"BTC/USDT": FILES["BTC/USDT"]},
    "end": "2021-02-05T00:00:00",
}
TRAINING = {
    "cv_folds": 2,
    # No early stopping: a fixed amount of work per model, comparable between runs.
    "xgboost": {"n_estimators": 600, "early_stopping_rounds": 600},
    "lightgbm": {"n_estimators": 700, "early_stopping_rounds": 700},
    "nhits": {"max_steps": 8, "val_check_steps": 4},
    "patchtst": {"max_steps": 4, "val_check_steps": 2},
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def wait_all(orchestrator: Any, job_ids: list[str], timeout: float) -> list[Any]:
    """Poll until every job has ended (or `timeout`); returns the last records."""
    from sqlalchemy import select

    from app.core.db.models import RetrainingJob
    from app.retraining.jobs import TERMINAL, JobRecord

    deadline = time.monotonic() + timeout
    wanted = set(job_ids)
    while True:
        with orchestrator.container.session() as session:
            rows = session.scalars(select(RetrainingJob).where(RetrainingJob.job_id.in_(wanted))).all()
            records = [JobRecord.from_row(r) for r in rows]
        done = sum(r.status in TERMINAL for r in records)
        if done == len(wanted) or time.monotonic() > deadline:
            return records
        time.sleep(0.02 if len(wanted) == 1 else 1.0)


def children_cpu_seconds() -> float:
    """CPU time of finished child processes (the workers, once stopped, and their pool processes)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_full(orchestrator: Any, env: dict[str, str], workers: list[tuple[str, str]], logs: Path) -> dict[str, Any]:
    from tests.services import celery_worker

    cpu_before = children_cpu_seconds()
    with ExitStack() as stack:
        for name, queues in workers:
            stack.enter_context(celery_worker(env, queues=queues, name=f"{name}@%h", log_path=logs / f"{name}.log"))
        started = time.monotonic()
        job_id = orchestrator.start_full(reason="benchmark", spec=FULL_SPEC)
        (job,) = wait_all(orchestrator, [job_id], timeout=1800)
        seconds = time.monotonic() - started
    # Includes worker start-up and shut-down: cores used is an estimate, not the job's alone.
    cpu = children_cpu_seconds() - cpu_before
    if job.status != "completed":
        raise RuntimeError(f"full retraining {job_id} ended {job.status}: {job.error_message}")
    per_model = {m: e.get("seconds") for m, e in job.models.items()}
    log(f"{len(workers)} worker(s): {seconds:.1f} s, {cpu:.1f} CPU s, per model {per_model}")
    return {"seconds": seconds, "per_model": per_model, "cpu_seconds": cpu}


def run_overhead(orchestrator: Any, jobs: int) -> dict[str, float]:
    """Trivial jobs one after another on warm workers: end to end, and minus the steps' own work."""
    totals, overheads = [], []
    for _ in range(jobs):
        job_id = orchestrator.start_partial(["naive"], reason="benchmark", spec=TRIVIAL_SPEC)
        (job,) = wait_all(orchestrator, [job_id], timeout=120)
        if job.status != "completed":
            raise RuntimeError(f"trivial job {job_id} ended {job.status}: {job.error_message}")
        total = (job.completed_at - job.started_at).total_seconds()
        work = float(job.metadata.get("dataset_seconds") or 0) + float(job.models["naive"]["seconds"])
        totals.append(total)
        overheads.append(total - work)
    return {"end_to_end": statistics.median(totals), "overhead": statistics.median(overheads)}


def run_load(orchestrator: Any, jobs: int) -> dict[str, Any]:
    started = time.monotonic()
    job_ids = [orchestrator.start_partial(["naive"], reason="load", spec=TRIVIAL_SPEC) for _ in range(jobs)]
    submitted = time.monotonic() - started
    log(f"load: {jobs} jobs submitted in {submitted:.1f} s")
    records = wait_all(orchestrator, job_ids, timeout=3600)
    seconds = time.monotonic() - started
    by_status: dict[str, int] = {}
    for record in records:
        by_status[record.status] = by_status.get(record.status, 0) + 1
    return {
        "load_jobs": jobs,
        "load_jobs_completed": by_status.get("completed", 0),
        "load_jobs_by_status": by_status,
        "load_jobs_missing": jobs - len(records),
        "load_seconds": round(seconds, 2),
        "load_submit_seconds": round(submitted, 2),
        "load_jobs_per_second": round(jobs / seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load-jobs", type=int, default=1000)
    parser.add_argument("--overhead-jobs", type=int, default=7)
    parser.add_argument("--skip-full", action="store_true")
    parser.add_argument("--scale", choices=("small", "seed"), default="small")
    parser.add_argument("--symbols", type=int, default=50, help="--scale seed: symbols tiled from --data")
    parser.add_argument("--days", type=float, default=180, help="--scale seed: days of 5m candles per symbol")
    parser.add_argument("--workers", default="1,2", help="--scale seed: worker process counts to run the job on")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ohlcv")
    parser.add_argument("--model-types", default=None, help="--scale seed: only these (default: the policy's)")
    args = parser.parse_args()
    args.workers = sorted({int(k) for k in str(args.workers).split(",")})
    # SIGTERM ends like Ctrl-C: the workers are stopped and the database dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    import redis

    from app.bootstrap import bootstrap, set_container
    from app.core.migrations import upgrade
    from app.core.settings import Mode, Settings
    from app.retraining import RetrainingOrchestrator
    from app.retraining.datasets import build_job_dataset
    from app.retraining.spec import DataSelection
    from tests.services import REDIS_BASE, celery_worker, create_database, drop_database, service_env
    from workers.celery_app import celery_app, configure
    from workers.celery_dispatcher import CeleryDispatcher

    base = int(os.environ.get("CLM_BENCH_REDIS_DB", "11"))
    broker, backend = f"{REDIS_BASE}/{base}", f"{REDIS_BASE}/{base + 1}"
    for url in (broker, backend):
        redis.Redis.from_url(url).flushdb()
    database = create_database("clm_bench")
    workdir = Path(tempfile.mkdtemp(prefix="clm-bench-retraining-"))
    result: dict[str, Any] = {"benchmark": "retraining", "load_average_at_start": os.getloadavg()[0]}
    try:
        upgrade(database)
        settings = Settings(
            CLM_MODE=Mode.DISTRIBUTED,
            DATABASE_URL=database,
            CELERY_BROKER_URL=broker,
            CELERY_RESULT_BACKEND=backend,
            ARTIFACT_ROOT=str(workdir / "artifacts"),
            CLM_TRAIN_THREADS=1,
            CLM_DEVICE="cpu",
        )
        configure(settings)
        container = bootstrap(settings, CeleryDispatcher(celery_app))
        set_container(container)
        if args.scale == "seed":
            from bench.seed_scale import run_seed

            device = os.environ.get("CLM_DEVICE", "auto")
            threads = {
                k: "1" for k in ("CLM_TRAIN_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
            }
            env = service_env(database, broker, backend, settings.artifact_root, CLM_DEVICE=device, **threads)
            if args.model_types:  # a full job of fewer types, every hyperparameter the policy's default
                container.policy_store.update(
                    {"training": {"model_types": args.model_types.split(",")}}, author="benchmark"
                )
            orchestrator = RetrainingOrchestrator(container)  # the policy's defaults
            result |= {"benchmark": "retraining_seed_scale"} | run_seed(
                args, settings, container, orchestrator, env, workdir
            )
            result["load_average_at_end"] = os.getloadavg()[0]
            container.dispose()
            return
        container.policy_store.update({"training": TRAINING}, author="benchmark")
        orchestrator = RetrainingOrchestrator(container)
        one_thread = {
            k: "1" for k in ("CLM_TRAIN_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
        }
        env = service_env(database, broker, backend, settings.artifact_root, CLM_DEVICE="cpu", **one_thread)
        # Datasets built once here: both runs time the canvas and the training only.
        FULL_SPEC["dataset_id"] = build_job_dataset(container, DataSelection.model_validate(FULL_SPEC))
        TRIVIAL_SPEC["dataset_id"] = build_job_dataset(container, DataSelection.model_validate(TRIVIAL_SPEC))

        if not args.skip_full:
            one = run_full(orchestrator, env, [("one", "default,cpu,gpu")], workdir)
            two = run_full(orchestrator, env, [("cpu", "default,cpu"), ("gpu", "gpu")], workdir)
            result |= {
                "scale": "4 models, 2 symbols x 59 days of 1h candles (2 x ~1400 rows), cv_folds 2, 1 thread each",
                "hyperparameters": TRAINING,
                "one_worker_seconds": round(one["seconds"], 2),
                "two_worker_seconds": round(two["seconds"], 2),
                "speedup": round(one["seconds"] / two["seconds"], 3),
                "one_worker_model_seconds": one["per_model"],
                "two_worker_model_seconds": two["per_model"],
                "one_worker_cpu_seconds": round(one["cpu_seconds"], 1),
                "two_worker_cpu_seconds": round(two["cpu_seconds"], 1),
            }
        with (
            celery_worker(env, queues="default,cpu", pool="prefork", concurrency=2, name="load-cpu@%h",
                          log_path=workdir / "load-cpu.log"),
            celery_worker(env, queues="gpu", name="load-gpu@%h", log_path=workdir / "load-gpu.log"),
        ):  # fmt: skip
            overhead = run_overhead(orchestrator, args.overhead_jobs)
            result |= {
                "canvas_overhead_seconds": round(overhead["overhead"], 3),
                "trivial_job_end_to_end_seconds": round(overhead["end_to_end"], 3),
            }
            log(f"canvas overhead {overhead}")
            result |= run_load(orchestrator, args.load_jobs)
        result["load_average_at_end"] = os.getloadavg()[0]
        container.dispose()
    finally:
        drop_database(database)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
