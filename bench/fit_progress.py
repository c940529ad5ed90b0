"""Benchmark: the cost of progress inside a fit (issue 19 item 7) on an XGBoost fit of a realistic size.

The same XGBoost forecaster fit (default policy parameters, 300 trees, early stopping off so
every tree is built) on 200,000 rows x 40 features of synthetic data, alternately without
progress (baseline) and with the real recorder a training task uses
(`app.retraining.progress.recorder`): it hears every tree and writes the job's entry at
most once a second (an embedded SQLite store here). Runs alternate (A B A B ...) so the
machine's load falls on both alike; the figures are the medians of each (wall seconds, and this
process's CPU seconds, which a busy shared machine disturbs less), and their ratio.

Usage: python bench/fit_progress.py [--rows 200000] [--features 40] [--trees 300] [--repeats 3] [--threads 1]
Last output line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from app.bootstrap import bootstrap  # noqa: E402
from app.core.dispatch import InlineDispatcher  # noqa: E402
from app.core.settings import Mode, Settings  # noqa: E402
from app.forecasters import ForecastSpec  # noqa: E402
from app.forecasters.xgboost_model import XGBoostForecaster  # noqa: E402
from app.retraining import RetrainingOrchestrator, jobs  # noqa: E402
from app.retraining.progress import recorder as progress_recorder  # noqa: E402


def synthetic(rows: int, features: int, seed: int) -> tuple[pd.DataFrame, list[str]]:
    """Rows of features with a weak linear signal in the target, as returns have."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((rows, features)).astype(np.float32)
    names = [f"f{i}" for i in range(features)]
    frame = pd.DataFrame(values, columns=names)
    weights = rng.standard_normal(features) * 0.01
    frame["future_return"] = values @ weights + rng.standard_normal(rows) * 0.05
    frame["symbol"] = "BTC/USDT"
    frame["timestamp"] = np.arange(rows, dtype=np.int64) * 3_600_000
    return frame, names


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=40)
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    load_start = round(os.getloadavg()[0], 2)
    frame, names = synthetic(args.rows, args.features, seed=1)
    cut = int(len(frame) * 0.85)
    train, valid = frame.iloc[:cut], frame.iloc[cut:]
    # early stopping as far away as the budget: every tree is built in every run
    params = {"n_estimators": args.trees, "early_stopping_rounds": args.trees + 1}
    spec = ForecastSpec(names, horizon=1, params=params, seed=7, threads=args.threads, device=args.device)

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            CLM_MODE=Mode.EMBEDDED, DATABASE_URL=f"sqlite:///{tmp}/clm.sqlite", ARTIFACT_ROOT=f"{tmp}/artifacts"
        )
        container = bootstrap(settings, InlineDispatcher(), migrate=True)
        orchestrator = RetrainingOrchestrator(container)  # inline dispatcher: the job waits; we train by hand

        def fit(with_progress: bool) -> tuple[float, float, int, int]:
            writes: list[dict] = []
            progress = None
            if with_progress:
                job_id = orchestrator.start_partial(["xgboost"], reason="bench")
                with container.session() as session:
                    jobs.set_model_result(jobs.lock_job(session, job_id), "xgboost", status=jobs.TRAINING)
                progress = progress_recorder(container, job_id, "xgboost", writes.append)
                progress("fit", 0, 1)
            started, cpu_started = time.perf_counter(), time.process_time()
            model = XGBoostForecaster(spec).fit(train, valid, progress)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            trees = model.booster.num_boosted_rounds()
            if with_progress:
                entry = orchestrator.get_job(job_id).models["xgboost"]["progress"]
                assert entry["in_fit"] == {"unit": "trees", "done": trees, "total": trees}, entry
                orchestrator.cancel(job_id, "bench")
            return seconds, cpu, trees, len(writes)

        fit(False)  # warm-up: imports, first allocations
        baseline, recorded, baseline_cpu, recorded_cpu, writes = [], [], [], [], []
        for _ in range(args.repeats):
            seconds, cpu, trees, _ = fit(False)
            baseline.append(seconds)
            baseline_cpu.append(cpu)
            seconds, cpu, trees_with, count = fit(True)
            recorded.append(seconds)
            recorded_cpu.append(cpu)
            writes.append(count)
            assert trees == trees_with == args.trees, (trees, trees_with)
        container.dispose()

    base, prog = statistics.median(baseline), statistics.median(recorded)
    base_cpu, prog_cpu = statistics.median(baseline_cpu), statistics.median(recorded_cpu)
    result = {
        "rows": args.rows,
        "features": args.features,
        "trees": args.trees,
        "threads": args.threads,
        "device": args.device,
        "fit_s_without_progress": [round(s, 3) for s in baseline],
        "fit_s_with_progress": [round(s, 3) for s in recorded],
        "median_without_s": round(base, 3),
        "median_with_s": round(prog, 3),
        "overhead_pct": round(100.0 * (prog - base) / base, 2),
        "cpu_s_without_progress": [round(s, 3) for s in baseline_cpu],
        "cpu_s_with_progress": [round(s, 3) for s in recorded_cpu],
        "cpu_overhead_pct": round(100.0 * (prog_cpu - base_cpu) / base_cpu, 2),
        "job_entry_writes_per_fit": writes,
        "load_avg_1m_start": load_start,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
