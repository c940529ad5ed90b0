"""Benchmark: the operator's read surfaces on a PostgreSQL database that has run for months.

Seeds a fresh database with 200,000 served predictions, 100,000 shadow pairs, 2,000 jobs,
5,000 drift events and 20,000 Q-values, then times `/metrics` (the Prometheus scrape, read
from the database), `/api/clm/status` and the dashboard page `/`, through the Flask app
in-process (no network). Baseline in the same run: `/health` (one `SELECT 1`) and
`/api/jobs` (one indexed query), the floor of a request against the same database.

Usage: python bench/api.py [--predictions 200000] [--shadow 100000] [--repeat 15]
Needs PostgreSQL at CLM_TEST_PG_ADMIN_URL (default postgres@127.0.0.1). Last output line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert

from app.api import create_app
from app.bootstrap import bootstrap
from app.core.clock import utcnow
from app.core.db import models as m
from app.core.dispatch import InlineDispatcher
from app.core.migrations import upgrade
from app.core.settings import Mode, Settings
from tests.services import create_database, drop_database

MODEL_TYPES = ("xgboost", "lightgbm", "nhits", "patchtst")


def seed(container, predictions: int, shadow: int, rng: random.Random) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    models = []
    for model_type in MODEL_TYPES:
        for version in range(1, 11):
            status = "ACTIVE" if version == 9 else "SHADOW" if version == 10 else "RETIRED"
            models.append(
                {
                    "model_id": f"{model_type}_v{version}", "model_type": model_type, "version": str(version),
                    "status": status, "metrics": {"test": {"directional_accuracy": 0.55, "sharpe": 1.1}},
                    "created_at": now - timedelta(days=70 - 7 * version), "file_path": "x",
                    "promoted_at": now - timedelta(days=5) if status == "ACTIVE" else None,
                }
            )  # fmt: skip
    with container.engine.begin() as conn:
        conn.execute(insert(m.ModelRegistry), models)
        conn.execute(
            insert(m.PredictionLog),
            [
                {
                    "model_id": f"{MODEL_TYPES[i % 4]}_v9", "symbol": "BTC/USDT",
                    "timestamp": now - timedelta(minutes=i), "direction": rng.choice((-1, 1)),
                    "confidence": rng.random(), "latency_ms": rng.expovariate(1 / 40), "created_at": now,
                }
                for i in range(predictions)
            ],
        )  # fmt: skip
        conn.execute(
            insert(m.ShadowTestResult),
            [
                {
                    "shadow_model_id": f"{MODEL_TYPES[i % 4]}_v10", "active_model_id": f"{MODEL_TYPES[i % 4]}_v9",
                    "symbol": "BTC/USDT", "timestamp": now - timedelta(minutes=i), "active_prediction": {},
                    "shadow_prediction": {}, "active_direction": rng.choice((-1, 1)),
                    "shadow_direction": rng.choice((-1, 1)), "realized_return": rng.gauss(0, 0.01),
                    "created_at": now - timedelta(minutes=i),
                }
                for i in range(shadow)
            ],
        )  # fmt: skip
        conn.execute(
            insert(m.RetrainingJob),
            [
                {
                    "job_id": f"RTN-BENCH-{i:05d}", "job_type": "full", "trigger_reason": "scheduled",
                    "status": rng.choice(("completed", "completed", "partial", "failed")),
                    "started_at": now - timedelta(hours=6 * i), "completed_at": now - timedelta(hours=6 * i - 1),
                    "duration_seconds": rng.randint(600, 7200), "created_at": now,
                    "models_trained": {t: {"model_id": f"{t}_v9"} for t in MODEL_TYPES},
                }
                for i in range(1, 2001)
            ],
        )  # fmt: skip
        conn.execute(
            insert(m.DriftEvent),
            [
                {
                    "detected_at": now - timedelta(hours=i), "drift_type": "feature", "feature_name": f"f{i % 60}",
                    "p_value": rng.random() / 20, "severity": rng.choice(("low", "medium", "high")), "created_at": now,
                }
                for i in range(5000)
            ],
        )  # fmt: skip
        for rl_type in ("meta_strategy", "position_sizing"):
            conn.execute(
                insert(m.RLAgentState),
                [{"rl_type": rl_type, "version": 3, "total_updates": 50000, "epsilon": 0.1, "updated_at": now}],
            )
            conn.execute(
                insert(m.RLQValue),
                [{"rl_type": rl_type, "version": 3, "state_key": f"s{i}", "action": "a"} for i in range(10000)],
            )
        conn.exec_driver_sql("ANALYZE")


def timed(client, path: str, repeat: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--predictions", type=int, default=200_000)
    parser.add_argument("--shadow", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    url = create_database("clm_bench_api")
    try:
        upgrade(url)
        with tempfile.TemporaryDirectory() as artifacts:
            settings = Settings(CLM_MODE=Mode.DISTRIBUTED, DATABASE_URL=url, ARTIFACT_ROOT=artifacts)
            container = bootstrap(settings, InlineDispatcher())
            started = time.perf_counter()
            seed(container, args.predictions, args.shadow, random.Random(5))
            print(f"seeded in {time.perf_counter() - started:.1f}s", file=sys.stderr)
            client = create_app(container).test_client()
            paths = ("/health", "/api/jobs", "/metrics", "/api/clm/status", "/")
            for path in paths:  # warm: first request loads templates, plans
                client.get(path)
            results = {path: timed(client, path, args.repeat) for path in paths}
            container.dispose()
    finally:
        drop_database(url)
    floor = results["/api/jobs"]["median_ms"]
    print(
        json.dumps(
            {
                "benchmark": "api_read_surfaces",
                "rows": {"predictions": args.predictions, "shadow_pairs": args.shadow, "jobs": 2000, "drift": 5000},
                "baseline": {"health": results["/health"], "jobs_list": results["/api/jobs"]},
                "metrics_scrape": results["/metrics"],
                "clm_status": results["/api/clm/status"],
                "dashboard": results["/"],
                "dashboard_vs_jobs_list": round(results["/"]["median_ms"] / floor, 1),
                "metrics_vs_jobs_list": round(results["/metrics"]["median_ms"] / floor, 1),
                "note": "2-core machine shared with other engineers' test runs: figures are loaded-machine figures",
            }
        )
    )


if __name__ == "__main__":
    main()
