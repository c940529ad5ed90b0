"""The seed-scale retraining job (`bench/retraining.py --scale seed`): 50 symbols x 180 days of 5m candles.

Real 5m candle files (../shared/data/ohlcv) are tiled to the scale as `bench/features.py`
does, written into the candle store of a PostgreSQL database made for the run (the store's
own COPY path), and one full retraining with the policy's defaults is started exactly as
`POST /api/jobs/retraining` starts it, through K real Celery worker processes (solo pool,
one thread each, every queue), for each K of `--workers`. Between runs the dataset is
deleted, so each run prepares it again.

Printed: the dataset stages timed in this process on one symbol group (candle read,
features, labels, Parquet write), the job's tasks as the job row records them (pieces,
dataset join, each model type's final fit and folds, the callback: assembly, gate,
registration), the job's wall time, each worker process's peak RSS (VmHWM), the speed-up
from one worker to two, the canvas's task count, and a simulated scaling check: the
measured task durations list-scheduled in canvas order over K = 1, 2, 4, 8, 16 workers.
"""

from __future__ import annotations

import io
import os
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from bench.features import make_market

EXCHANGE = "binance"
STEP_MS = 300_000
SIMULATED_WORKERS = (1, 2, 4, 8, 16)


def log(message: str) -> None:
    import sys

    print(message, file=sys.stderr, flush=True)


def load_candles(container: Any, data_dir: Path, symbols: int, days: float) -> tuple[list[str], int, int, float]:
    """Tile the real files and write them through the candle store (COPY on PostgreSQL)."""
    from app.data_pipeline import CandleStore

    store = CandleStore(container)
    names, first, last = [], None, None
    started = time.perf_counter()
    for frame in make_market(data_dir, symbols, days):
        symbol = str(frame["symbol"].iloc[0])
        candles = frame.drop(columns="symbol")
        store.write(EXCHANGE, symbol, "5m", candles, source=f"bench tile {symbol}")
        names.append(symbol)
        first = int(candles["timestamp"].iloc[0]) if first is None else first
        last = int(candles["timestamp"].iloc[-1])
    return names, int(first or 0), int(last or 0) + STEP_MS, time.perf_counter() - started


def dataset_stages(container: Any, spec: Any, symbols: tuple[str, ...]) -> dict[str, float]:
    """One piece's stages timed here (the workers record only the whole step)."""
    from app.data_pipeline import CandleStore, engineer_features, generate_labels
    from app.data_pipeline.dataset import parquet_bytes, symbol_frame

    store = CandleStore(container)
    start_ms, end_ms = int(spec.start.timestamp() * 1000), int(spec.end.timestamp() * 1000)
    stages = {"candle_read": 0.0, "features": 0.0, "labels": 0.0}
    for symbol in symbols:
        t0 = time.perf_counter()
        candles = store.read(EXCHANGE, symbol, "5m", start_ms, end_ms)
        t1 = time.perf_counter()
        engineer_features(candles, spec.features)
        t2 = time.perf_counter()
        generate_labels(candles[["timestamp", "close"]], spec.labels)
        t3 = time.perf_counter()
        stages["candle_read"] += t1 - t0
        stages["features"] += t2 - t1
        stages["labels"] += t3 - t2
    frame, _, _ = symbol_frame(container, spec, symbols)
    t0 = time.perf_counter()
    parquet_bytes(frame)
    stages["dataset_write"] = time.perf_counter() - t0
    return {k: round(v, 2) for k, v in stages.items()}


def vm_hwm_mb(pid: int) -> float:
    """Peak resident memory of a live process (Linux VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def forget_datasets(container: Any) -> None:
    from sqlalchemy import delete

    from app.core.db.models import Dataset

    with container.session() as session:
        session.execute(delete(Dataset))
    for path in container.artifacts.list("datasets"):
        container.artifacts.delete(path)


def run_job(orchestrator: Any, env: dict[str, str], workers: int, spec: dict[str, Any], logs: Path) -> dict[str, Any]:
    from bench.retraining import wait_all
    from tests.services import celery_worker

    forget_datasets(orchestrator.container)
    with ExitStack() as stack:
        procs = [
            stack.enter_context(
                celery_worker(
                    env, queues="default,cpu,gpu", name=f"seed{workers}-{i}@%h", log_path=logs / f"w{workers}-{i}.log"
                )
            )
            for i in range(workers)
        ]
        started = time.monotonic()
        job_id = orchestrator.start_full(reason="benchmark", spec=spec)
        (job,) = wait_all(orchestrator, [job_id], timeout=6 * 3600)
        seconds = time.monotonic() - started
        rss = {f"worker{i + 1}": vm_hwm_mb(p.pid) for i, p in enumerate(procs)}
    if job.status not in ("completed", "partial"):
        raise RuntimeError(f"seed-scale job {job_id} ended {job.status}: {job.error_message}")
    log(f"{workers} worker(s): {seconds:.1f} s, job {job.status}, peak RSS {rss}")
    return {"job": job, "seconds": seconds, "peak_rss_mb": rss}


def task_durations(job: Any) -> dict[str, Any]:
    """The job's tasks, as its row records them: seconds per piece, dataset, final fit, fold, callback."""
    meta = job.metadata
    tasks: dict[str, float] = {}
    for k, piece in sorted((meta.get("pieces") or {}).items()):
        tasks[f"piece:{k}"] = float(piece.get("seconds") or 0.0)
    tasks["prepare_dataset"] = float(meta.get("dataset_seconds") or 0.0)
    finished = []
    for model_type, entry in job.models.items():
        tasks[f"train:{model_type}"] = float(entry.get("seconds") or 0.0)
        finished.append(entry.get("finished_at"))
        for k, fold in sorted((entry.get("folds") or {}).items(), key=lambda kv: int(kv[0])):
            tasks[f"fold:{model_type}:{k}"] = float(fold.get("seconds") or 0.0)
            finished.append(fold.get("finished_at"))
    last = max(pd.Timestamp(f) for f in finished if f)
    tasks["finalize"] = max(
        0.0, (pd.Timestamp(job.completed_at).tz_localize(None) - last.tz_localize(None)).total_seconds()
    )
    return tasks


def stage_breakdown(job: Any) -> dict[str, dict[str, float]]:
    """Per model type, the seconds of each stage inside its tasks (the final fit's and its folds'
    `stage_seconds`, summed): load, fit, calibration, scoring, artifact write, registration, and the
    callback's fold pooling and promotion."""
    out: dict[str, dict[str, float]] = {}
    for model_type, entry in job.models.items():
        totals: dict[str, float] = {}
        parts = [entry.get("stage_seconds") or {}]
        parts += [(fold.get("stage_seconds") or {}) for fold in (entry.get("folds") or {}).values()]
        for part in parts:
            for stage, seconds in part.items():
                totals[stage] = totals.get(stage, 0.0) + float(seconds)
        out[model_type] = {k: round(v, 2) for k, v in totals.items()}
    return out


def _naive(value: Any) -> pd.Timestamp:
    """A UTC timestamp without its zone (the rows hold aware and naive ones)."""
    stamp = pd.Timestamp(value)
    return stamp.tz_convert(None) if stamp.tzinfo is not None else stamp


def stage_summary(tasks: dict[str, float]) -> dict[str, float]:
    """Per stage: the pieces and the dataset join; per model type its final fit and its folds (summed); the callback."""
    out: dict[str, float] = {"dataset_pieces": 0.0}
    for name, seconds in tasks.items():
        if name.startswith("piece:"):
            out["dataset_pieces"] += seconds
        elif name.startswith("fold:"):
            key = f"{name.split(':')[1]}_folds"
            out[key] = out.get(key, 0.0) + seconds
        elif name.startswith("train:"):
            out[f"{name.split(':')[1]}_final_fit"] = seconds
        else:
            out[name] = seconds
    return {k: round(v, 2) for k, v in out.items()}


def simulate(tasks: dict[str, float], workers: int) -> float:
    """Job time when the canvas's tasks (measured durations) run on `workers` workers, each taking the
    next task in canvas order when free: pieces, the dataset join, the header, the callback."""
    pieces = [s for n, s in tasks.items() if n.startswith("piece:")]
    # The canvas's order: every final fit, then the folds from the last (tasks() lists them per type).
    finals = [s for n, s in tasks.items() if n.startswith("train:")]
    folds = sorted(((int(n.split(":")[2]), s) for n, s in tasks.items() if n.startswith("fold:")), key=lambda f: -f[0])
    header = finals + [s for _, s in folds]
    return _phase(pieces, workers) + tasks["prepare_dataset"] + _phase(header, workers) + tasks["finalize"]


def _phase(durations: list[float], workers: int) -> float:
    free = [0.0] * workers
    for seconds in durations:
        i = free.index(min(free))
        free[i] += seconds
    return max(free) if durations else 0.0


def run_seed(
    args: Any, settings: Any, container: Any, orchestrator: Any, env: dict[str, str], workdir: Path
) -> dict[str, Any]:
    from app.model_training.service import resolve_device
    from app.retraining.datasets import dataset_spec
    from app.retraining.spec import DataSelection

    symbols, start_ms, end_ms, load_seconds = load_candles(container, args.data, args.symbols, args.days)
    rows = (end_ms - start_ms) // STEP_MS * len(symbols)
    log(f"candles: {len(symbols)} symbols x {args.days} days = {rows} rows written in {load_seconds:.1f} s (COPY)")
    iso = lambda ms: pd.Timestamp(ms, unit="ms").isoformat()  # noqa: E731
    spec = {
        "source": "store",
        "exchange": EXCHANGE,
        "symbols": symbols,
        "timeframe": "5m",
        "start": iso(start_ms),
        "end": iso(end_ms),
    }
    built = dataset_spec(container.policy_store.get(), DataSelection.model_validate(spec))
    group = tuple(symbols[: settings.dataset_piece_symbols])
    stages_here = dataset_stages(container, built, group)
    log(f"dataset stages of one piece ({len(group)} symbols), timed here: {stages_here}")

    device = resolve_device(env.get("CLM_DEVICE", "auto"))
    log(f"device: {device} (CLM_DEVICE={env.get('CLM_DEVICE', 'auto')}: the neural models train on CUDA where it is)")
    runs = {k: run_job(orchestrator, env, k, spec, workdir) for k in args.workers}
    base = runs[min(runs)]
    job = runs[max(runs)]["job"] if 2 not in runs else runs[2]["job"]
    tasks = task_durations(base["job"])
    stages = stage_summary(tasks)
    log(f"stages of the {min(runs)}-worker job (task seconds): {stages}")
    breakdown = stage_breakdown(base["job"])
    for model_type, seconds in breakdown.items():
        log(f"  {model_type} (final fit + folds), seconds per stage: {seconds}")
    simulated = {str(k): round(simulate(tasks, k), 1) for k in SIMULATED_WORKERS}
    log(f"simulated job seconds by worker count: {simulated}")
    peak = {f"{k}_workers.{name}": mb for k, run in runs.items() for name, mb in run["peak_rss_mb"].items()}
    speedup = round(runs[1]["seconds"] / runs[2]["seconds"], 3) if 1 in runs and 2 in runs else None
    return {
        "scale": "seed" if (args.symbols, args.days) == (50, 180) else "reduced",
        "rows": rows,
        "dataset_rows": _dataset_rows(container, job),
        "symbols": len(symbols),
        "days": args.days,
        "candle_load_seconds": round(load_seconds, 1),
        "job_seconds": round(runs[max(runs)]["seconds"], 1),
        "job_seconds_by_workers": {str(k): round(r["seconds"], 1) for k, r in runs.items()},
        "job_status": job.status,
        "model_types": list(job.model_types),
        "models": {m: {k: e.get(k) for k in ("status", "registry_status", "error")} for m, e in job.models.items()},
        "stages": stages,
        "dataset_stages_one_piece": stages_here | {"symbols": len(group)},
        "stage_seconds_by_model": breakdown,
        "task_seconds": {k: round(v, 2) for k, v in tasks.items()},
        "peak_rss_mb_by_worker": peak,
        "speedup_two_workers": speedup,
        "canvas_tasks": int(job.metadata.get("canvas_tasks") or 0),
        "dataset_pieces": int(job.metadata.get("dataset_pieces") or 0),
        "simulated_job_seconds_by_workers": simulated,
        "device": device,
        "cpu_count": os.cpu_count(),
    }


def _dataset_rows(container: Any, job: Any) -> int | None:
    from app.core.db.models import Dataset

    with container.session() as session:
        row = session.get(Dataset, job.metadata.get("dataset_id"))
        if row is None:
            return None
        data = container.artifacts.get_bytes(row.file_path)
    return int(pq.ParquetFile(io.BytesIO(data)).metadata.num_rows)
