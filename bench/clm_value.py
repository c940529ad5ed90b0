"""Does the loop pay? The same synthetic market replayed under three policies (issue 17).

- **full**: the main run's continuous learning (drift checks, health checks, weekly retraining,
  shadow tests, promotion); the drift-chosen training window included.
- **scheduled**: the weekly retraining and its shadow tests only (no drift, no health checks).
- **frozen**: the initial models only. Not replayed: with the same seed the initial training is
  the same job on the same candles, so the frozen book is the full replay's initial models.

Each replay is `app.simulation.run_simulation` (embedded SQLite, eager Celery, one process per
replay). The figures are not the engine's trades (those pass through the RL agents and their
exploration): for every replay candle, the model of each type that was ACTIVE at its close
(from `model_status_history`) predicts it, the policy's position is the mean of the types'
directions, and `app/model_training/scoring.py` scores the staggered book after fees, before
and after the injected shift. Paired over seeds: the full CLM against frozen after the shift
(Wilcoxon signed-rank and a sign count of the post-shift Sharpe).

    nice -n 5 .venv/bin/python bench/clm_value.py --seeds 10 --replay-days 8 --shift-after-days 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.db.models import ModelStatusHistory
from app.data_pipeline import engineer_features
from app.data_pipeline.labels import generate_labels
from app.data_pipeline.timeframes import timeframe_ms, to_ms
from app.model_registry import ModelRegistry
from app.model_training.scoring import YEAR_MS, Bootstrap, strategy_table, summarize
from app.model_training.storage import load_forecaster
from app.simulation.config import RunConfig
from app.simulation.run import embedded_container, run_simulation
from workers import celery_app, wsgi  # the eager Celery dispatcher and the in-process API, as `workers.cli run`

POLICIES = ("frozen", "scheduled", "full")
MODEL_TYPES = ("xgboost", "lightgbm")
METRICS = ("net_pnl", "hit_rate", "max_drawdown", "sharpe")


def replay_rows(result: Any) -> pd.DataFrame:
    """Features and labels of every replay candle (timestamp, symbol, close, future_return, features)."""
    feed, policy = result.feed, result.container.policy_store.get()
    replay_ms = int(feed.timestamps[feed.replay_index])
    frames = []
    for symbol, candles in feed.candles.items():
        candles = candles[["timestamp", "open", "high", "low", "close", "volume"]].reset_index(drop=True)
        features = engineer_features(candles, policy.features)
        labels = generate_labels(candles[["timestamp", "close"]], policy.labels)
        rows = features.join(labels[["close", "future_return"]], how="inner")
        rows.insert(1, "symbol", symbol)
        frames.append(rows.loc[rows["timestamp"] >= replay_ms])
    return pd.concat(frames, ignore_index=True).sort_values(["timestamp", "symbol"], ignore_index=True)


def active_positions(container: Any, rows: pd.DataFrame, step_ms: int, initial_only: bool) -> np.ndarray:
    """Per row: the mean direction of each type's model ACTIVE at the candle's close."""
    with container.session_factory() as session:
        history = session.execute(
            select(ModelStatusHistory.model_type, ModelStatusHistory.model_id, ModelStatusHistory.changed_at)
            .where(ModelStatusHistory.new_status == "ACTIVE")
            .order_by(ModelStatusHistory.changed_at, ModelStatusHistory.id)
        ).all()
    registry = ModelRegistry(container)
    close_ms = rows["timestamp"].to_numpy(dtype=np.int64) + step_ms
    directions = []
    for model_type in MODEL_TYPES:
        spells = [(model_id, to_ms(at)) for kind, model_id, at in history if kind == model_type]
        if initial_only:
            spells = spells[:1]
        if not spells:
            continue
        direction = np.zeros(len(rows))
        for k, (model_id, since) in enumerate(spells):
            until = spells[k + 1][1] if k + 1 < len(spells) else np.iinfo(np.int64).max
            mask = (close_ms >= (since if k else 0)) & (close_ms < until)
            if mask.any():
                forecaster = load_forecaster(container, registry.get_model(model_id))
                direction[mask] = forecaster.predict(rows.loc[mask]).direction.to_numpy(dtype=float)
        directions.append(direction)
    return np.mean(directions, axis=0) if directions else np.zeros(len(rows))


def score(rows: pd.DataFrame, position: np.ndarray, horizon: int, fee_pct: float, step_ms: int) -> dict[str, float]:
    table, _ = strategy_table(rows, {"policy": position}, horizon=horizon, fee_pct=fee_pct, step_ms=step_ms)
    figures = summarize(
        table,
        ["policy"],
        horizon=horizon,
        periods_per_year=YEAR_MS / step_ms,
        bootstrap=Bootstrap(replicates=50),
        compare_to=(),
    )["policy"]
    traded = table["policy:traded"].sum()
    return {
        "net_pnl": figures["total_return"],
        "hit_rate": float(table["policy:hits"].sum() / traded) if traded else float("nan"),
        "max_drawdown": figures["max_drawdown"],
        "sharpe": figures["sharpe"],
        "traded_share": figures["traded_share"],
    }


def one_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {"seed": seed, "seconds": {}}
    for loop in ("full", "scheduled"):
        config = RunConfig(
            seed=seed,
            quiet=True,
            loop=loop,
            model_types=MODEL_TYPES,
            replay_days=args.replay_days,
            shift_after_days=args.shift_after_days,
            history_days=args.history_days,
            training_days=args.training_days,
            drift_checks_after_days=min(1.0, args.shift_after_days / 2),
            report_path=Path(args.workdir) / f"report-{seed}-{loop}.html",
        )
        started = time.perf_counter()
        container = embedded_container(config, Path(args.workdir) / f"seed-{seed}-{loop}")
        result = run_simulation(config, container)
        out["seconds"][loop] = round(time.perf_counter() - started, 1)
        out["stages_" + loop] = {k: round(v, 1) for k, v in result.stages.items()}
        policy = container.policy_store.get()
        step_ms = timeframe_ms(policy.data.timeframe)
        rows = replay_rows(result)
        shift_ms = to_ms(config.shift_at) if config.shift_at else None
        loops = [(loop, False)] + ([("frozen", True)] if loop == "full" else [])
        for name, initial_only in loops:
            position = active_positions(container, rows, step_ms, initial_only)
            before = (rows["timestamp"] < shift_ms).to_numpy() if shift_ms else np.ones(len(rows), bool)
            out[name] = {
                "before": score(
                    rows.loc[before], position[before], policy.labels.horizon, policy.labels.fee_pct, step_ms
                ),
                "after": score(
                    rows.loc[~before], position[~before], policy.labels.horizon, policy.labels.fee_pct, step_ms
                ),
            }
        if loop == "full":
            with container.session_factory() as session:
                promoted = session.scalars(
                    select(ModelStatusHistory.model_id).where(
                        ModelStatusHistory.new_status == "ACTIVE",
                        ModelStatusHistory.changed_at >= config.shift_at,
                    )
                ).all()
            out["full_promoted_after_shift"] = list(promoted)
        container.dispose()
    return out


def table_line(name: str, values: list[dict[str, Any]]) -> str:
    cells = []
    for part in ("before", "after"):
        for metric in METRICS:
            column = np.array([v[name][part][metric] for v in values], dtype=float)
            cells.append(f"{np.nanmean(column):+.3f}±{np.nanstd(column):.3f}")
    return f"{name:9s} " + " ".join(f"{c:>15s}" for c in cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--replay-days", type=float, default=8.0)
    parser.add_argument("--shift-after-days", type=float, default=2.0)
    parser.add_argument("--history-days", type=float, default=16.0)
    parser.add_argument("--training-days", type=float, default=12.0)
    parser.add_argument("--workdir", default="var/bench/clm_value")
    parser.add_argument("--partial", default=None, help="append each seed's JSON here as it finishes")
    args = parser.parse_args()
    os.environ.setdefault("CLM_TRAIN_THREADS", "1")
    assert celery_app.celery_app is not None and wsgi.create_app is not None
    started = time.perf_counter()
    results = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        result = one_seed(args, seed)
        results.append(result)
        print(f"seed {seed}: {json.dumps(result)}", flush=True)
        if args.partial:
            with open(args.partial, "a") as handle:
                handle.write(json.dumps(result) + "\n")
    report(results, args, time.perf_counter() - started)


def report(results: list[dict[str, Any]], args: argparse.Namespace, seconds: float) -> None:
    header = " ".join(f"{p[:3]}:{m:>11s}" for p in ("before", "after") for m in METRICS)
    print(f"\n{'policy':9s} {header}")
    for name in POLICIES:
        print(table_line(name, results))
    full = np.array([r["full"]["after"]["sharpe"] for r in results])
    frozen = np.array([r["frozen"]["after"]["sharpe"] for r in results])
    diff = full - frozen
    wins = int((diff > 0).sum())
    wilcoxon = stats.wilcoxon(full, frozen, alternative="greater") if len(results) >= 2 and diff.any() else None
    untied = int((diff != 0).sum())
    sign_p = float(stats.binomtest(wins, untied, 0.5, alternative="greater").pvalue) if untied else 1.0
    paired = {
        "metric": "sharpe after the shift, full - frozen",
        "wins": wins,
        "seeds": len(results),
        "mean_diff": float(diff.mean()),
        "wilcoxon_p": None if wilcoxon is None else float(wilcoxon.pvalue),
        "sign_test_p": sign_p,
        "goal": "full beats frozen in >= 8 of 10 seeds, paired test p < 0.05",
    }
    print(f"\npaired (full vs frozen, Sharpe after the shift): {paired}")
    per_policy = {
        name: {
            part: {
                metric: {
                    "mean": float(np.nanmean([r[name][part][metric] for r in results])),
                    "std": float(np.nanstd([r[name][part][metric] for r in results])),
                    "per_seed": [r[name][part][metric] for r in results],
                }
                for metric in (*METRICS, "traded_share")
            }
            for part in ("before", "after")
        }
        for name in POLICIES
    }
    summary = {
        "bench": "clm_value",
        "policies": list(POLICIES),
        "seeds": [r["seed"] for r in results],
        "replay_days": args.replay_days,
        "shift_after_days": args.shift_after_days,
        "model_types": list(MODEL_TYPES),
        "metrics": per_policy,
        "paired_test": paired,
        "promoted_after_shift": {r["seed"]: len(r["full_promoted_after_shift"]) for r in results},
        "replay_seconds": {r["seed"]: r["seconds"] for r in results},
        "seconds": round(seconds, 1),
        "load_1min": os.getloadavg()[0],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
