"""Benchmark: retention of the live path's telemetry on PostgreSQL (`app/operations/telemetry_retention.py`).

The tables are filled as a day of the live path at 200 requests/s would leave them, scaled by
`--rows` (per table: prediction logs of two models, delivered `ai.signal.generated` events with
one delivery record each, pairs of a finished shadow test), all older than the policy keeps,
plus a tenth as many recent prediction logs that must stay. Measured in one run:

- `seconds`, `rows_per_s`: `apply_retention` deleting the old rows (batches of the policy's
  `batch_rows`, each its own transaction);
- `baseline_seconds`, `baseline_rows_per_s`: the same rows, refilled, deleted by one plain
  `DELETE ... WHERE time < cutoff` per table in one transaction (what a hand-written cleanup
  would do: fastest, but one transaction holding every row lock and the vacuum horizon);
- `insert_p99_ms_during`: p99 of single-row prediction-log inserts (200/s, synchronous
  commit) another connection makes while retention runs (`_during_baseline`: while the
  baseline runs; `_idle`: with nothing running);
- `peak_mb`: the process's peak resident memory.

Usage: python bench/retention.py [--rows 1000000]
Needs PostgreSQL at CLM_TEST_PG_ADMIN_URL (default postgres@127.0.0.1); creates and drops its
own database. Last output line: one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FILL = """
INSERT INTO prediction_logs
    (model_id, symbol, timestamp, predicted_return, direction, confidence, latency_ms, created_at)
SELECT CASE WHEN g %% 2 = 0 THEN 'bench_a' ELSE 'bench_b' END, 'BTCUSDT',
       %(start)s + g * interval '1 millisecond', 0.001, 1, 0.6, 1.0, %(start)s + g * interval '1 millisecond'
FROM generate_series(1, %(rows)s) g;
INSERT INTO events (topic, payload, created_at, status, attempts, delivered_at)
SELECT 'ai.signal.generated', '{"symbol": "BTCUSDT"}', %(start)s + g * interval '1 millisecond', 'delivered', 1,
       %(start)s + g * interval '1 millisecond'
FROM generate_series(1, %(rows)s) g;
INSERT INTO event_deliveries (event_id, handler, status, attempts, updated_at)
SELECT id, 'bench.handler', 'delivered', 1, created_at FROM events WHERE created_at < %(cutoff)s;
INSERT INTO shadow_test_results (shadow_model_id, active_model_id, symbol, timestamp, active_prediction,
                                 shadow_prediction, active_direction, shadow_direction, realized_return, created_at)
SELECT 'bench_b', 'bench_a', 'BTCUSDT', %(start)s + g * interval '1 millisecond', '{}', '{}', 1, -1, 0.001,
       %(start)s + g * interval '1 millisecond'
FROM generate_series(1, %(rows)s) g;
"""
BASELINE = """
DELETE FROM event_deliveries
    WHERE event_id IN (SELECT id FROM events WHERE created_at < %(cutoff)s AND status = 'delivered');
DELETE FROM events WHERE created_at < %(cutoff)s AND status = 'delivered';
DELETE FROM prediction_logs WHERE timestamp < %(cutoff)s;
DELETE FROM shadow_test_results WHERE shadow_model_id = 'bench_b' AND timestamp < %(cutoff)s;
"""


def _fill(raw, start, cutoff, rows: int) -> None:  # type: ignore[no-untyped-def]
    from app.core.clock import utcnow

    cursor = raw.cursor()
    cursor.execute(FILL, {"start": start, "cutoff": cutoff, "rows": rows})  # old rows
    recent = {"start": utcnow() - timedelta(days=1), "rows": rows // 10}
    cursor.execute(FILL.split(";")[0], recent)  # kept
    raw.commit()
    cursor.close()


def _vacuum(engine) -> None:  # type: ignore[no-untyped-def]
    raw = engine.raw_connection()
    raw.dbapi_connection.autocommit = True  # type: ignore[union-attr]
    raw.dbapi_connection.cursor().execute("VACUUM ANALYZE")  # type: ignore[union-attr]
    raw.close()


def _inserts_while(engine, busy: threading.Event | None, seconds: float) -> list[float]:  # type: ignore[no-untyped-def]
    """Single-row prediction-log inserts, paced at 200/s, for `seconds` or while `busy` is set."""
    from app.core.clock import utcnow

    raw = engine.raw_connection()
    cursor = raw.cursor()
    latencies = []
    deadline = time.monotonic() + seconds
    while (busy.is_set() if busy is not None else True) and time.monotonic() < deadline:
        started = time.perf_counter()
        cursor.execute(
            "INSERT INTO prediction_logs (model_id, symbol, timestamp, latency_ms, created_at) "
            "VALUES ('bench_a', 'ETHUSDT', %s, 1.0, %s)",
            (utcnow(), utcnow()),
        )
        raw.commit()
        latencies.append((time.perf_counter() - started) * 1000.0)
        time.sleep(max(0.0, 0.005 - (time.perf_counter() - started)))
    raw.close()
    return latencies


@contextlib.contextmanager
def _writer(engine) -> Iterator[list[float]]:  # type: ignore[no-untyped-def]
    """Single-row inserts on another connection for as long as the block runs; their latencies."""
    busy = threading.Event()
    busy.set()
    latencies: list[float] = []
    thread = threading.Thread(target=lambda: latencies.extend(_inserts_while(engine, busy, 3600)))
    thread.start()
    try:
        yield latencies
    finally:
        busy.clear()
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    from app.bootstrap import bootstrap
    from app.core.clock import utcnow
    from app.core.db.models import ModelRegistry as ModelRow
    from app.core.dispatch import InlineDispatcher
    from app.core.migrations import upgrade
    from app.core.settings import Mode, Settings
    from app.operations.telemetry_retention import apply_retention
    from tests.services import create_database, drop_database

    database_url = create_database("clm_bench_retention")
    out: dict[str, float | str] = {"rows_per_table": args.rows}
    try:
        upgrade(database_url)
        settings = Settings(CLM_MODE=Mode.DISTRIBUTED, DATABASE_URL=database_url, ARTIFACT_ROOT=tempfile.mkdtemp())
        container = bootstrap(settings, InlineDispatcher())
        container.policy_store.update({"clm_config": {"retention": {"max_seconds": 3600}}})
        with container.session() as session:
            for model_id, status in (("bench_a", "ACTIVE"), ("bench_b", "REJECTED")):
                session.add(
                    ModelRow(
                        model_id=model_id, model_type="bench", version=model_id, status=status, metrics={},
                        created_at=utcnow(), file_path="none",
                    )
                )  # fmt: skip
        now = utcnow()
        cutoff = now - timedelta(days=120)  # older than every default retention period
        start = cutoff - timedelta(days=1)
        deleted_rows = 4 * args.rows  # logs, events, deliveries, pairs

        raw = container.engine.raw_connection()
        _fill(raw, start, cutoff, args.rows)
        _vacuum(container.engine)
        idle = _inserts_while(container.engine, None, 3.0)
        cursor = raw.cursor()
        with _writer(container.engine) as during_baseline:
            started = time.perf_counter()
            cursor.execute(BASELINE, {"cutoff": cutoff})
            raw.commit()
            baseline = time.perf_counter() - started
        _fill(raw, start, cutoff, args.rows)
        raw.close()
        _vacuum(container.engine)
        with _writer(container.engine) as during:
            started = time.perf_counter()
            result = apply_retention(container, now=now)
            seconds = time.perf_counter() - started
        assert result.complete and sum(result.deleted.values()) == deleted_rows, result
        out |= {
            "rows_deleted": deleted_rows,
            "seconds": seconds,
            "rows_per_s": deleted_rows / seconds,
            "baseline_seconds": baseline,
            "baseline_rows_per_s": deleted_rows / baseline,
            "batch_rows": container.policy_store.get().clm_config.retention.batch_rows,
            "insert_p99_ms_idle": float(np.percentile(idle, 99)),
            "insert_p99_ms_during": float(np.percentile(during, 99)),
            "insert_p99_ms_during_baseline": float(np.percentile(during_baseline, 99)),
            "inserts_during": len(during),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        container.dispose()
    finally:
        drop_database(database_url)
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}))


if __name__ == "__main__":
    main()
