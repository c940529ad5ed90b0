"""Does the loop pay? The same synthetic market replayed under three policies (issue 17).

- **full**: the main run's continuous learning (drift checks, health checks, weekly retraining,
  shadow tests, promotion); the drift-chosen training window included.
- **scheduled**: the weekly retraining and its shadow tests only (no drift, no health checks).
- **frozen**: the initial models only. Not replayed: with the same seed the initial training is
  the same job on the same candles, so the frozen book is the full replay's initial models.

Each replay is `app.simulation.run_simulation` (embedded SQLite, eager Celery, one process per
replay). The figures are not the engine's trades (those pass through the RL agents and their
exploration): `app/simulation/counterfactual.py` has the model of each type that was ACTIVE
at each replay candle's close predict it, the position is the mean of the types' directions,
and `app/model_training/scoring.py` scores the staggered book after fees, before and after
the injected shift. Paired over seeds: the full CLM against frozen after the shift
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
from scipy import stats
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.db.models import ModelStatusHistory
from app.data_pipeline.timeframes import to_ms
from app.simulation import counterfactual
from app.simulation.config import RunConfig
from app.simulation.run import embedded_container, run_simulation
from workers import celery_app, wsgi  # the eager Celery dispatcher and the in-process API, as `workers.cli run`

POLICIES = ("frozen", "scheduled", "full")
MODEL_TYPES = ("xgboost", "lightgbm")
METRICS = ("net_pnl", "hit_rate", "max_drawdown", "sharpe")


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
            symbols=tuple(f"SYN{chr(ord('A') + k)}/USDT" for k in range(args.synthetic_symbols)),
            max_shadow_samples=args.max_shadow_samples,
            report_path=Path(args.workdir) / f"report-{seed}-{loop}.html",
        )
        started = time.perf_counter()
        container = embedded_container(config, Path(args.workdir) / f"seed-{seed}-{loop}")
        result = run_simulation(config, container)
        out["seconds"][loop] = round(time.perf_counter() - started, 1)
        out["stages_" + loop] = {k: round(v, 1) for k, v in result.stages.items()}
        rows = counterfactual.candle_rows(container, config.replay_start)
        shift_ms = to_ms(config.shift_at) if config.shift_at else None
        before = (rows["timestamp"] < shift_ms).to_numpy() if shift_ms else np.ones(len(rows), bool)
        for name, frozen in [(loop, False)] + ([("frozen", True)] if loop == "full" else []):
            position, models = counterfactual.book_position(container, rows, frozen=frozen)
            out[name] = {
                "before": counterfactual.book_figures(container, rows.loc[before], position[before]),
                "after": counterfactual.book_figures(container, rows.loc[~before], position[~before]),
                "models": models,
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
            out["shadow_power"] = shadow_power(container, config.shift_at)
        container.dispose()
    return out


def shadow_power(container: Any, since: Any) -> list[dict[str, Any]]:
    """Each shadow test started after `since`: its pairs, the per-pair PnL difference's effect size
    (from the paired t-test's one-sided p) and the pairs a single test at the policy's level would
    need to see that effect 80 % of the time: how far the replay is from letting the test decide."""
    from app.shadow_tester.service import ShadowTester

    policy = container.policy_store.get().clm_config.auto_promote_threshold
    with container.session_factory() as session:
        shadows = session.scalars(
            select(ModelStatusHistory.model_id).where(
                ModelStatusHistory.new_status == "SHADOW", ModelStatusHistory.changed_at >= since
            )
        ).all()
    out = []
    for model_id in dict.fromkeys(shadows):
        result = ShadowTester(container).evaluate_shadow_model(model_id)
        n = result.decision_samples or result.total_samples
        if n < 3 or not 0.0 < result.p_value_better < 1.0:
            out.append({"model_id": model_id, "pairs": n, "effect_size": None, "pairs_needed": None})
            continue
        effect = float(stats.t.isf(result.p_value_better, n - 1)) / np.sqrt(n)  # mean / std of the difference
        needed = (stats.norm.isf(policy.significance_level / 2) + stats.norm.isf(0.2)) ** 2 / effect**2
        out.append(
            {
                "model_id": model_id,
                "pairs": n,
                "pnl_difference": result.pnl_difference,
                "effect_size": round(float(effect), 4),
                "pairs_needed": round(needed) if effect > 0 else None,  # None: the shadow was not better
                "recommendation": result.recommendation,
            }
        )
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
    parser.add_argument("--synthetic-symbols", type=int, default=2, help="SYNA/USDT, SYNB/USDT, ...")
    parser.add_argument(
        "--max-shadow-samples", type=int, default=80, help="a shadow test's last look (pairs): more pairs, more power"
    )
    parser.add_argument("--workdir", default="var/bench/clm_value")
    parser.add_argument("--partial", default=None, help="append each seed's JSON here as it finishes")
    parser.add_argument(
        "--report-only", nargs="+", default=None, help="no replay: the table and JSON of seeds saved by --partial"
    )
    args = parser.parse_args()
    if args.report_only:
        saved = [json.loads(line) for path in args.report_only for line in Path(path).read_text().splitlines() if line]
        report(sorted(saved, key=lambda r: r["seed"]), args, sum(sum(r["seconds"].values()) for r in saved))
        return
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
        "losses": int((diff < 0).sum()),
        "ties": int((diff == 0).sum()),  # the same books: nothing promoted in the full replay
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
        # Per shadow test after the shift: pairs seen, effect size, pairs a test at the policy's level needs.
        "shadow_power": {r["seed"]: r.get("shadow_power", []) for r in results},
        "replay_seconds": {r["seed"]: r["seconds"] for r in results},
        "seconds": round(seconds, 1),
        "load_1min": os.getloadavg()[0],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
