"""The main run's wall time by stage (embedded): data, features, each model's training,
simulation, drift, retraining, shadow, promotion.

    .venv/bin/python bench/e2e.py [--days 16] [--seed 7]

Stages come from the run itself: `data` (market + candle store), `features` (the initial
dataset build: features and labels), `training:<type>` (the initial canvas's per-model
seconds), `simulation` (the whole replay, which includes the rest), `drift` (the drift-check
tasks, minus the retrainings they started inline), `retraining` (datasets + training of
the jobs after the initial one), `shadow` (hourly shadow evaluations without a promotion)
and `promotion` (the evaluations that promoted). Baseline, in the same run: training the
trivial `naive` model type on the initial dataset. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=float, default=None)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)

    from app.model_training.service import train_model
    from app.retraining import RetrainingOrchestrator
    from app.simulation.config import RunConfig
    from app.simulation.run import run_simulation

    config = RunConfig(seed=args.seed, quiet=True)
    if args.days is not None:
        config = replace(
            config, replay_days=args.days, shift_after_days=min(config.shift_after_days or 0, args.days * 0.4)
        )
    started = time.perf_counter()
    result = run_simulation(config)
    total = time.perf_counter() - started
    container = result.container
    jobs = RetrainingOrchestrator(container).list_jobs(limit=100)
    initial = next(j for j in jobs if j.job_id == result.initial_job_id)
    later = [j for j in jobs if j.job_id != result.initial_job_id and j.job_type in ("full", "partial")]

    stages: dict[str, float] = {"data": result.stages.get("data", 0.0)}
    stages["features"] = float(initial.metadata.get("dataset_seconds") or 0.0)
    for model_type, entry in sorted(initial.models.items()):
        stages[f"training:{model_type}"] = float(entry.get("seconds") or 0.0)
    stages["simulation"] = result.stages.get("simulation", 0.0)
    retraining = sum(
        float(j.metadata.get("dataset_seconds") or 0.0) + sum(float(e.get("seconds") or 0.0) for e in j.models.values())
        for j in later
    )
    drift_retraining = sum(
        float(j.metadata.get("dataset_seconds") or 0.0) + sum(float(e.get("seconds") or 0.0) for e in j.models.values())
        for j in later
        if j.trigger_reason.startswith("drift")
    )
    stages["drift"] = max(0.0, result.stages.get("job:drift-check", 0.0) - drift_retraining)
    stages["retraining"] = retraining
    from sqlalchemy import select

    from app.core.db.models import Event

    with container.session_factory() as session:
        promoted_at = set(session.scalars(select(Event.created_at).where(Event.topic == "model.promoted")))
    promotion = sum(s for label, s, at in result.runner_calls if label == "shadow-evaluation" and at in promoted_at)
    stages["shadow"] = result.stages.get("job:shadow-evaluation", 0.0) - promotion
    stages["promotion"] = promotion
    stages["report"] = result.stages.get("report", 0.0)

    t0 = time.perf_counter()
    train_model(container, "naive", initial.metadata["dataset_id"])
    baseline = time.perf_counter() - t0
    checks = result.story.checks() if result.story else []
    print(
        json.dumps(
            {
                "total_seconds": round(total, 2),
                "stages": {k: round(v, 2) for k, v in stages.items()},
                "baseline": {"naive_training_seconds": round(baseline, 3)},
                "replay_steps": result.stats.steps,
                "trades": result.stats.trades_closed,
                "prediction_ms": {k: round(v, 1) for k, v in result.prediction_ms.items()},
                "story_steps_happened": sum(1 for _, ok, _ in checks if ok),
                "story_steps": len(checks),
                "note": "shared 2-core machine under load from other engineers' jobs",
            }
        )
    )


if __name__ == "__main__":
    main()
