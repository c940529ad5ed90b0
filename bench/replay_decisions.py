"""The full loop's replay on real candles: its seconds (wall, CPU, stages) and what it decided.

One replay of `bench/clm_value.py --source files --loops full` (same configuration), then every
decision the loop wrote, read back from its database and normalised so that two replays of
the same candles compare row by row: drift events (type, model, feature, severity, p-values),
the outbox (topic, payload), retraining jobs, model status changes, the registry, shadow
state, the beat's job calls and the engine's trades. Random ids (uuid hex, model ids) become
ordinals of first appearance; wall-clock fields (durations, latencies, file paths) are dropped.

    nice -n 5 .venv/bin/python bench/replay_decisions.py --files ../shared/data/ohlcv \
        --symbols BTC/USDT,ETH/USDT,SOL/USDT,ADA/USDT --start 2020-12-01 --replay-days 14 \
        --save var/bench/decisions-new.json [--profile var/bench/new.prof]
    .venv/bin/python bench/replay_decisions.py --compare var/bench/decisions-old.json var/bench/decisions-new.json
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import re
import resource
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

from sqlalchemy import inspect, text

# Wall-clock or location fields: they differ between two replays of the same decisions.
VOLATILE = {
    "latency_ms",
    "avg_latency_ms",
    "duration_seconds",
    "seconds",
    "heartbeat_at",
    "file_path",
    "file_size_bytes",
    "sha256",
    "created_at",
    "delivered_at",
    "updated_at",
    "outcome_recorded_at",
    "manifest",
    "training_seconds",
    "fit_seconds",
    "elapsed_seconds",
    "wall_seconds",
    "duration_sec",
}
TABLES = (
    "drift_events",
    "events",
    "retraining_jobs",
    "model_status_history",
    "model_registry",
    "shadow_evaluation_state",
    "rl_versions",
    "model_performance_logs",
)
_ID = re.compile(
    r"\b[0-9a-f]{32}\b|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|(?<=T\d{6}-)[0-9a-f]{8}\b"
)


def volatile(key: str) -> bool:
    return key in VOLATILE or key.endswith("seconds") or key.startswith("latency") or key == "pid"


class Normaliser:
    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def text(self, value: str) -> str:
        return _ID.sub(lambda m: self.ids.setdefault(m.group(0), f"<id{len(self.ids)}>"), value)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self(v) for k, v in sorted(value.items()) if not volatile(k)}
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        return value


def decisions(container: Any, runner_calls: list[tuple[str, float, datetime]], stats: Any) -> dict[str, Any]:
    norm = Normaliser()
    out: dict[str, Any] = {}
    engine = container.engine
    names = set(inspect(engine).get_table_names())
    with engine.connect() as connection:
        for table in TABLES:
            if table not in names:
                continue
            key = {"events": "id", "drift_events": "id", "model_status_history": "id"}.get(table)
            order = f" ORDER BY {key}" if key else ""
            rows = [dict(r._mapping) for r in connection.execute(text(f"SELECT * FROM {table}{order}"))]
            for row in rows:
                for column, value in list(row.items()):
                    if isinstance(value, str) and value[:1] in "{[":
                        with contextlib.suppress(ValueError):
                            row[column] = json.loads(value)
            normalised = [norm(row) for row in rows]
            if not key:
                normalised.sort(key=lambda r: json.dumps(r, sort_keys=True, default=str))
            out[table] = normalised
        out["prediction_logs"] = [
            norm(dict(r._mapping))
            for r in connection.execute(
                text(
                    "SELECT model_id, symbol, timestamp, predicted_return, direction, confidence, realized_return"
                    " FROM prediction_logs ORDER BY id"
                )
            )
        ]
    out["runner_calls"] = [[label, when.isoformat()] for label, _, when in runner_calls]
    out["engine"] = norm({k: v for k, v in vars(stats).items() if "seconds" not in k})
    return out


def by_month(calls: list[tuple[str, float, datetime]]) -> dict[str, dict[str, float]]:
    """Mean milliseconds of each beat job per call, by simulated month: what grows with the tables."""
    sums: dict[str, dict[str, list[float]]] = {}
    for label, seconds, when in calls:
        sums.setdefault(label, {}).setdefault(f"{when:%Y-%m}", []).append(seconds)
    return {label: {m: round(1000 * sum(v) / len(v), 1) for m, v in months.items()} for label, months in sums.items()}


def replay(args: argparse.Namespace) -> None:
    import bench.clm_value as clm_value
    from app.simulation.run import embedded_container, run_simulation
    from workers import celery_app, wsgi

    os.environ.setdefault("CLM_TRAIN_THREADS", "1")
    import logging

    logging.getLogger("app.operations.alerts").setLevel(logging.ERROR)
    assert celery_app.celery_app is not None and wsgi.create_app is not None
    bench_args = argparse.Namespace(
        files=args.files,
        file_timeframe="5m",
        timeframe=args.timeframe,
        symbols=args.symbols,
        start=args.start,
        history_days=16.0,
        training_days=12.0,
        replay_days=args.replay_days or None,  # 0: every candle the files have after the history
        workdir=args.workdir,
        min_shadow_samples=None,  # clm_value's defaults: 2 and 8 days of hourly calls per symbol
        max_shadow_samples=None,
        shadow_patience_days=None,  # clm_value's default: covers the last look
    )
    # The RL agents' exploration, the replay's only randomness that decides, is seeded by the run's seed
    # (`run_simulation`): two replays of the same code make the same decisions.
    config = clm_value.files_config(bench_args, args.seed, "full")
    load_before = os.getloadavg()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    container = embedded_container(config, Path(args.workdir) / "replay")
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    result = run_simulation(config, container)
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    wall = time.perf_counter() - started
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    summary = {
        "bench": "replay_decisions",
        "replay_days": round(config.replay_days, 2),
        "symbols": list(config.symbols),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "stages": {k: round(v, 1) for k, v in result.stages.items()},
        "jobs_run": dict(Counter(call[0] for call in result.runner_calls)),
        "job_ms_per_call_by_month": by_month(result.runner_calls),
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }
    if args.save:
        Path(args.save).parent.mkdir(parents=True, exist_ok=True)
        Path(args.save).write_text(json.dumps(decisions(container, result.runner_calls, result.stats), default=str))
    container.dispose()
    print(json.dumps(summary))


_INDEX = re.compile(r"\[\d+\]")


def compare(old_path: str, new_path: str, tolerance: float) -> int:
    """Every difference, counted by table and by field name (the last part of its path)."""
    old, new = json.loads(Path(old_path).read_text()), json.loads(Path(new_path).read_text())
    differences = 0
    report: dict[str, Any] = {}
    by_field: Counter[str] = Counter()
    for table in sorted(set(old) | set(new)):
        a, b = old.get(table, []), new.get(table, [])
        if isinstance(a, dict):
            a, b = [a], [b]
        diffs = []
        if len(a) != len(b):
            diffs.append(f"{len(a)} rows before, {len(b)} after")
            by_field[f"{table}:row count"] += 1
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            for path, u, v in _diff(x, y, tolerance):
                diffs.append(f"row {i} {path}: {u!r} -> {v!r}")
                by_field[f"{table}:{_INDEX.sub('[]', path.rsplit('.', 1)[-1])}"] += 1
        report[table] = {"rows": [len(a), len(b)], "differences": len(diffs), "first": diffs[:3]}
        differences += len(diffs)
    summary = {"compare": [old_path, new_path], "tolerance": tolerance, "differences": differences}
    print(json.dumps(summary | {"by_field": dict(by_field.most_common())} | report))
    return 1 if differences else 0


def _diff(x: Any, y: Any, tolerance: float, path: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(x, dict) and isinstance(y, dict):
        out = []
        for k in sorted(set(x) | set(y)):
            out += _diff(x.get(k, "<absent>"), y.get(k, "<absent>"), tolerance, f"{path}.{k}")
        return out
    if isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        return [d for i, (u, v) in enumerate(zip(x, y, strict=True)) for d in _diff(u, v, tolerance, f"{path}[{i}]")]
    if isinstance(x, float) and isinstance(y, float):
        same = x == y or abs(x - y) <= tolerance * max(abs(x), abs(y))
        return [] if same else [(path, x, y)]
    return [] if x == y else [(path, x, y)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", nargs="+", default=["../shared/data/ohlcv"])
    parser.add_argument("--symbols", default="BTC/USDT,ETH/USDT,SOL/USDT,ADA/USDT")
    parser.add_argument("--timeframe", default="15m")
    parser.add_argument("--start", default="2020-12-01")
    parser.add_argument("--replay-days", type=float, default=14.0, help="0: all the files have")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", default="var/bench/replay_decisions")
    parser.add_argument("--save", default=None, help="write the replay's normalised decisions here (JSON)")
    parser.add_argument("--profile", default=None, help="cProfile the replay into this file")
    parser.add_argument("--compare", nargs=2, default=None, metavar=("OLD", "NEW"), help="no replay: diff two saves")
    parser.add_argument("--tolerance", type=float, default=0.0, help="compare: relative tolerance on floats")
    args = parser.parse_args()
    if args.compare:
        raise SystemExit(compare(*args.compare, args.tolerance))
    replay(args)


if __name__ == "__main__":
    main()
