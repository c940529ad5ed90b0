"""Benchmark: RL trade updates applied through the database-backed agents on PostgreSQL.

Measures the position sizing agent's exactly-once update path (lock the agent row, record
the trade, update Q, publish the event, one transaction per trade) from one process and
from several processes at once, plus the latency of a sizing decision (select + clamp +
event). Baseline in the same run: the same Q rule on the in-memory `QTable` (no storage).
Every run checks that the update count equals the number of trades.

Usage: python bench/rl_updates.py [--trades 600] [--processes 2]
Needs PostgreSQL at CLM_BENCH_PG_ADMIN_URL (default postgres@127.0.0.1:5432, trust auth).
Last output line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from app.rl.qlearning import QParams, QTable
from app.rl.sizing_space import SIZING_ACTION_KEYS, SizingState

ADMIN_URL = os.environ.get("CLM_BENCH_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REGIMES = ("TRENDING", "RANGING", "CHOPPY", "VOLATILE")


def _state(rng: random.Random) -> SizingState:
    return SizingState(rng.choice(REGIMES), rng.random(), rng.random(), rng.random(), rng.uniform(0, 5))


def _container(database_url: str, artifact_root: str):
    from app.bootstrap import bootstrap
    from app.core.dispatch import InlineDispatcher
    from app.core.settings import Mode, Settings

    settings = Settings(CLM_MODE=Mode.DISTRIBUTED, DATABASE_URL=database_url, ARTIFACT_ROOT=artifact_root)
    return bootstrap(settings, InlineDispatcher(), register_handlers=False)


def _apply(args: tuple[str, str, list[int]]) -> tuple[float, float]:
    from app.rl.position_sizing import RLPositionSizing

    database_url, artifact_root, trade_numbers = args
    container = _container(database_url, artifact_root)
    agent = RLPositionSizing(container)
    start = time.time()  # wall clock: comparable across processes
    for n in trade_numbers:
        rng = random.Random(n)
        agent.update_q_table(_state(rng), rng.choice(SIZING_ACTION_KEYS), rng.gauss(0, 2), trade_id=f"t{n}")
    end = time.time()
    container.dispose()
    return start, end


def _fresh(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE rl_q_values, rl_agent_state, rl_applied_updates, rl_versions, events CASCADE"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=600)
    parser.add_argument("--processes", type=int, default=2)
    options = parser.parse_args()
    from app.core.migrations import upgrade
    from app.rl.position_sizing import RLPositionSizing

    name = f"clm_bench_rl_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    database_url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        upgrade(database_url)
        artifacts = tempfile.mkdtemp(prefix="clm-bench-rl-")
        trades = list(range(options.trades))

        # baseline: the same rule in memory
        table = QTable(SIZING_ACTION_KEYS, QParams(0.1, 0.95, 0.995, 0.05), epsilon=0.5)
        start = time.perf_counter()
        for n in trades:
            rng = random.Random(n)
            table.update(_state(rng).key, rng.choice(SIZING_ACTION_KEYS), rng.gauss(0, 2))
        baseline_seconds = time.perf_counter() - start

        _fresh(database_url)
        first, last = _apply((database_url, artifacts, trades))
        single_seconds = last - first
        container = _container(database_url, artifacts)
        single_count = RLPositionSizing(container).status()["total_updates"]

        _fresh(database_url)
        chunks = [trades[i :: options.processes] for i in range(options.processes)]
        with multiprocessing.get_context("spawn").Pool(options.processes) as pool:
            spans = pool.map(_apply, [(database_url, artifacts, chunk) for chunk in chunks])
        # from the first process's first update to the last one's last (imports not counted)
        parallel_seconds = max(end for _, end in spans) - min(start for start, _ in spans)
        parallel_count = RLPositionSizing(container).status()["total_updates"]

        agent = RLPositionSizing(container, rng=random.Random(1))
        latencies = []
        for n in range(200):
            state = _state(random.Random(n))
            start = time.perf_counter()
            agent.get_sizing_decision(state, balance_usd=100_000, open_positions=1)
            latencies.append((time.perf_counter() - start) * 1000)
        container.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    assert single_count == parallel_count == options.trades, (single_count, parallel_count)
    result = {
        "benchmark": "rl_updates",
        "trades": options.trades,
        "processes": options.processes,
        "db_updates_per_s_one_process": round(options.trades / single_seconds, 1),
        "db_updates_per_s_parallel": round(options.trades / parallel_seconds, 1),
        "baseline_in_memory_updates_per_s": round(options.trades / baseline_seconds, 1),
        "decision_latency_ms_p50": round(statistics.median(latencies), 2),
        "decision_latency_ms_p95": round(statistics.quantiles(latencies, n=20)[-1], 2),
        "exactly_once_checked": True,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
