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

    nice -n 5 .venv/bin/python bench/clm_value.py --seeds 10    # 4 symbols, 28 replay days, shift after day 2

Two processes share a 2-core machine: `--seeds 5 --first-seed 1 --partial a.jsonl` and `--seeds 5
--first-seed 6 --partial b.jsonl`, then `--report-only a.jsonl b.jsonl` for the table and the JSON.

Real candles (`--source files`): 5m files resampled to `--timeframe` (complete buckets only,
`app/data_pipeline/resample.py`), replayed from `--start` (default: the last history + replay days
the files share) over `--replay-days` (default: all the files have after the history). No shift:
the figures are over the whole replay and per calendar month, as they fell; the paired test
(full - frozen Sharpe, paired over months) is reported, not a goal. Seconds and stages per replay.

    nice -n 5 .venv/bin/python bench/clm_value.py --source files --files ../shared/data/ohlcv \
        --symbols BTC/USDT,ETH/USDT,SOL/USDT,ADA/USDT --timeframe 15m --start 2020-12-01 --seeds 1
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.db.models import ModelStatusHistory
from app.data_pipeline import read_candle_file
from app.data_pipeline.resample import resample_candles
from app.data_pipeline.timeframes import timeframe_ms, to_ms
from app.simulation import counterfactual
from app.simulation.config import RunConfig, files_from_paths
from app.simulation.market import from_ms
from app.simulation.run import embedded_container, run_simulation
from workers import celery_app, wsgi  # the eager Celery dispatcher and the in-process API, as `workers.cli run`

POLICIES = ("frozen", "scheduled", "full")
MODEL_TYPES = ("xgboost", "lightgbm")
METRICS = ("net_pnl", "hit_rate", "max_drawdown", "sharpe")


def one_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {"seed": seed, "seconds": {}}
    looks = shadow_looks(args, args.synthetic_symbols)
    for loop in loops_of(args):
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
            min_shadow_samples=looks[0],
            max_shadow_samples=looks[1],
            shadow_patience_days=shadow_patience(args, args.synthetic_symbols),
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
            if name == "full":  # a CRITICAL drift halts trading until resumed: the book as the engine traded
                out["full_as_traded"] = as_traded(container, rows, position, before)
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


def loops_of(args: argparse.Namespace) -> list[str]:
    """The replays `--loops` asks for, full first (frozen comes with it: its first models)."""
    loops = [loop.strip() for loop in args.loops.split(",") if loop.strip()]
    unknown = [loop for loop in loops if loop not in ("full", "scheduled")]
    if unknown or not loops:
        raise SystemExit(f"--loops takes full and/or scheduled, comma-separated; got {args.loops!r}")
    return sorted(dict.fromkeys(loops), key=("full", "scheduled").index)


def flat_while_halted(container: Any, rows: Any, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The book's position as the engine could trade it (flat where trading was halted), and that mask."""
    halted = counterfactual.halted_mask(container, rows)
    return np.where(halted, 0.0, position), halted


def as_traded(container: Any, rows: Any, position: np.ndarray, before: np.ndarray) -> dict[str, Any]:
    """The full replay's book flat while trading was halted (`counterfactual.halted_mask`), before and
    after the shift, with the share of rows halted after it. Nobody resumes a halt by hand in a replay: it
    lasts until the policy's `clm_config.trading_halt` lifts it (a model retrained after it promoted, or
    `max_hours`), or to the end."""
    flat, halted = flat_while_halted(container, rows, position)
    return {
        "before": counterfactual.book_figures(container, rows.loc[before], flat[before]),
        "after": counterfactual.book_figures(container, rows.loc[~before], flat[~before]),
        "halted_share_after": float(halted[~before].mean()) if (~before).any() else 0.0,
    }


def shadow_looks(args: argparse.Namespace, symbols: int) -> tuple[int, int]:
    """A shadow test's first and last look in pairs: by default 2 and 8 days of hourly calls on every symbol."""
    first = args.min_shadow_samples if args.min_shadow_samples is not None else 48 * symbols
    return first, args.max_shadow_samples if args.max_shadow_samples is not None else 4 * first


def shadow_patience(args: argparse.Namespace, symbols: int) -> float:
    """Days an automatic retraining leaves a type with a SHADOW under test alone: by default 1.5 x the last
    look's days at hourly calls on every symbol, since the replays' engine calls fewer (about 70 a day on 4
    symbols, not 96), so that a newer challenger does not retire a test before its last look."""
    if args.shadow_patience_days is not None:
        return float(args.shadow_patience_days)
    return round(1.5 * shadow_looks(args, symbols)[1] / (24 * symbols), 2)


def shadow_power(container: Any, since: Any) -> list[dict[str, Any]]:
    """Each shadow test started after `since`: its pairs and time blocks, the difference's effect size
    per block (from the block-robust test's one-sided p, `stats.TimeBlocks`) and the pairs a single
    test at the policy's level would need to see that effect 80 % of the time (blocks needed, times
    the pairs a block held): how far the replay is from letting the test decide. The effect is that of
    the test's own question (`rule`): under non-inferiority, the difference plus the margin."""
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
        units = result.test_blocks if result.test_blocks is not None else n
        if units < 3 or not 0.0 < result.p_value_better < 1.0:
            out.append({"model_id": model_id, "pairs": n, "blocks": units, "effect_size": None, "pairs_needed": None,
                        "rule": result.rule})  # fmt: skip
            continue
        effect = float(stats.t.isf(result.p_value_better, units - 1)) / np.sqrt(units)  # mean / std per block
        needed = (stats.norm.isf(policy.significance_level / 2) + stats.norm.isf(0.2)) ** 2 / effect**2
        out.append(
            {
                "model_id": model_id,
                "pairs": n,
                "blocks": units,
                "pnl_difference": result.pnl_difference,
                "effect_size": round(float(effect), 4),
                # None: the shadow was not better
                "pairs_needed": round(needed * n / units) if effect > 0 else None,
                "recommendation": result.recommendation,
                "rule": result.rule,
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
    parser.add_argument("--replay-days", type=float, default=None, help="synthetic: 28; files: all after the history")
    parser.add_argument("--shift-after-days", type=float, default=2.0)
    parser.add_argument("--history-days", type=float, default=16.0)
    parser.add_argument("--training-days", type=float, default=12.0)
    parser.add_argument("--synthetic-symbols", type=int, default=4, help="SYNA/USDT, SYNB/USDT, ...")
    parser.add_argument(
        "--min-shadow-samples", type=int, default=None, help="a shadow test's first look (pairs); default 2 days"
    )
    parser.add_argument(
        "--max-shadow-samples", type=int, default=None, help="the last look (pairs); default: 4 x the first (8 days)"
    )
    parser.add_argument(
        "--shadow-patience-days",
        type=float,
        default=None,
        help="clm_config.shadow_patience_days; default 1.5 x the last look at hourly calls on every symbol",
    )
    parser.add_argument("--workdir", default="var/bench/clm_value")
    parser.add_argument("--partial", default=None, help="append each seed's JSON here as it finishes")
    parser.add_argument(
        "--report-only", nargs="+", default=None, help="no replay: the table and JSON of seeds saved by --partial"
    )
    parser.add_argument("--source", choices=("synthetic", "files"), default="synthetic")
    parser.add_argument("--files", nargs="+", default=[], help="files: candle files or folders (of --file-timeframe)")
    parser.add_argument("--symbols", default=None, help="files: comma-separated (default: every file found)")
    parser.add_argument("--timeframe", default="15m", help="files: the replay's candles")
    parser.add_argument("--file-timeframe", default="5m", help="files: the files' candles, resampled to --timeframe")
    parser.add_argument("--start", default=None, help="files: first candle of the history, YYYY-MM-DD")
    parser.add_argument(
        "--loops", default="full,scheduled", help="the replays (frozen comes with full: its first models)"
    )
    args = parser.parse_args()
    if args.source == "files":
        real_candles(args)
        return
    args.replay_days = 28.0 if args.replay_days is None else args.replay_days
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


def sign_counts(diff: np.ndarray) -> dict[str, Any]:
    """Wins, losses and ties (the same books: nothing promoted) of paired differences, with the
    one-sided Wilcoxon signed-rank and sign tests."""
    wins, untied = int((diff > 0).sum()), int((diff != 0).sum())
    wilcoxon = stats.wilcoxon(diff, alternative="greater") if len(diff) >= 2 and diff.any() else None
    return {
        "wins": wins,
        "losses": int((diff < 0).sum()),
        "ties": int((diff == 0).sum()),
        "seeds": len(diff),
        "mean_diff": float(diff.mean()),
        "wilcoxon_p": None if wilcoxon is None else float(wilcoxon.pvalue),
        "sign_test_p": float(stats.binomtest(wins, untied, 0.5, alternative="greater").pvalue) if untied else 1.0,
    }


def report(results: list[dict[str, Any]], args: argparse.Namespace, seconds: float) -> None:
    header = " ".join(f"{p[:3]}:{m:>11s}" for p in ("before", "after") for m in METRICS)
    print(f"\n{'policy':9s} {header}")
    policies = [name for name in POLICIES if all(name in r for r in results)]  # --loops may leave scheduled out
    for name in policies:
        print(table_line(name, results))
    full = np.array([r["full"]["after"]["sharpe"] for r in results])
    frozen = np.array([r["frozen"]["after"]["sharpe"] for r in results])
    paired = {"metric": "sharpe after the shift, full - frozen"} | sign_counts(full - frozen)
    paired["goal"] = "full beats frozen in >= 8 of 10 seeds, paired test p < 0.05"
    print(f"\npaired (full vs frozen, Sharpe after the shift): {paired}")
    as_traded_paired = None
    if all("full_as_traded" in r for r in results):
        traded = np.array([r["full_as_traded"]["after"]["sharpe"] for r in results])
        as_traded_paired = sign_counts(traded - frozen) | {
            "metric": "sharpe after the shift, full as traded (flat while halted) - frozen",
            "halted_share_after": [r["full_as_traded"]["halted_share_after"] for r in results],
        }
        print(f"paired (full as traded vs frozen): {as_traded_paired}")
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
        for name in policies
    }
    summary = {
        "bench": "clm_value",
        "policies": policies,
        "seeds": [r["seed"] for r in results],
        "replay_days": args.replay_days,
        "shift_after_days": args.shift_after_days,
        "model_types": list(MODEL_TYPES),
        "metrics": per_policy,
        "paired_test": paired,
        "paired_test_as_traded": as_traded_paired,
        "promoted_after_shift": {r["seed"]: len(r["full_promoted_after_shift"]) for r in results},
        # Per shadow test after the shift: pairs seen, effect size, pairs a test at the policy's level needs.
        "shadow_power": {r["seed"]: r.get("shadow_power", []) for r in results},
        "replay_seconds": {r["seed"]: r["seconds"] for r in results},
        "seconds": round(seconds, 1),
        "load_1min": os.getloadavg()[0],
    }
    print(json.dumps(summary))


# ----------------------------------------------------------------- real candles (--source files)


def files_config(args: argparse.Namespace, seed: int, loop: str) -> RunConfig:
    """The run's configuration for real candles; `args.replay_days` None: every candle after the history."""
    found = files_from_paths(args.files, args.file_timeframe)
    if args.symbols:
        wanted = [s.strip() for s in args.symbols.split(",") if s.strip()]
        missing = [s for s in wanted if s not in found]
        if missing:
            raise SystemExit(f"--symbols: no {args.file_timeframe} file for {missing}; found {sorted(found)}")
        found = {s: found[s] for s in wanted}
    if not found:
        raise SystemExit(f"--files: no {args.file_timeframe} candle files in {args.files}")
    base = RunConfig(
        seed=seed,
        quiet=True,
        loop=loop,  # type: ignore[arg-type]
        model_types=MODEL_TYPES,
        source="files",
        files=found,
        symbols=tuple(found),
        timeframe=args.timeframe,
        file_timeframe=None if args.file_timeframe == args.timeframe else args.file_timeframe,
        files_start=datetime.fromisoformat(args.start) if args.start else None,
        history_days=args.history_days,
        training_days=args.training_days,
        replay_days=args.replay_days or 1.0,
        shift_after_days=None,
        retired_versions_kept=1000,  # the policy's most: every model ACTIVE in the replay is scored after it
        min_shadow_samples=shadow_looks(args, len(found))[0],
        max_shadow_samples=shadow_looks(args, len(found))[1],
        shadow_patience_days=shadow_patience(args, len(found)),
        report_path=Path(args.workdir) / f"report-files-{seed}-{loop}.html",
    )
    if args.replay_days is None:  # every candle the files share after the history
        common = shared_candles(base)
        history = round(args.history_days * 86_400_000 / timeframe_ms(args.timeframe))
        args.replay_days = (len(common) - history) * timeframe_ms(args.timeframe) / 86_400_000
        base = replace(base, replay_days=args.replay_days)
    return base


def shared_candles(config: RunConfig) -> list[int]:
    """The open times every symbol's candles share, from `config.files_start` on."""
    common: set[int] | None = None
    for symbol in config.symbols:
        frame, _ = read_candle_file(config.files[symbol], config.file_timeframe or config.timeframe)
        if config.file_timeframe:
            frame, _ = resample_candles(frame, config.file_timeframe, config.timeframe)
        stamps = set(frame["timestamp"].astype("int64"))
        common = stamps if common is None else common & stamps
    first = to_ms(config.files_start) if config.files_start else 0
    return sorted(t for t in common or () if t >= first)


def monthly_figures(container: Any, rows: Any, position: np.ndarray) -> dict[str, Any]:
    """The book's figures over the whole replay and per calendar month of the candles' open times."""
    month = pd.to_datetime(rows["timestamp"], unit="ms").dt.strftime("%Y-%m").to_numpy()
    out: dict[str, Any] = {"all": counterfactual.book_figures(container, rows, position), "months": {}}
    for name in sorted(set(month)):
        mask = month == name
        out["months"][name] = counterfactual.book_figures(container, rows.loc[mask], position[mask])
    return out


def one_files_seed(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {"seed": seed, "seconds": {}, "stages": {}}
    for loop in loops_of(args):
        config = files_config(args, seed, loop)
        started = time.perf_counter()
        container = embedded_container(config, Path(args.workdir) / f"files-{seed}-{loop}")
        result = run_simulation(config, container)
        out["seconds"][loop] = round(time.perf_counter() - started, 1)
        out["stages"][loop] = {k: round(v, 1) for k, v in result.stages.items()}
        feed = result.feed
        replay_start = from_ms(int(feed.timestamps[feed.replay_index]))
        out["replay"] = {
            "symbols": feed.symbols,
            "timeframe": config.timeframe,
            "from": f"{replay_start:%Y-%m-%d %H:%M}",
            "to": f"{from_ms(int(feed.timestamps[-1])) + feed.step:%Y-%m-%d %H:%M}",
            "candles_per_symbol": feed.steps,
            "history_candles": feed.replay_index,
            "days": round(feed.steps * feed.step.total_seconds() / 86_400, 2),
        }
        out.setdefault("jobs_run", {})[loop] = dict(Counter(call[0] for call in result.runner_calls))
        timing = {k: out[k] for k in ("replay", "seconds", "stages", "jobs_run")}
        print(f"replayed {loop}: {json.dumps(timing)}", flush=True)  # before the scoring, which reads every model
        rows = counterfactual.candle_rows(container, replay_start)
        for name, frozen in [(loop, False)] + ([("frozen", True)] if loop == "full" else []):
            position, models = counterfactual.book_position(container, rows, frozen=frozen)
            out[name] = monthly_figures(container, rows, position) | {"models": models}
            if name == "full":  # a CRITICAL drift halts trading until resumed: the book as the engine traded
                flat, halted = flat_while_halted(container, rows, position)
                out["full_as_traded"] = monthly_figures(container, rows, flat) | {
                    "halted_share": float(halted.mean()) if len(halted) else 0.0
                }
        out["rows"] = len(rows)
        container.dispose()
    return out


def real_candles(args: argparse.Namespace) -> None:
    os.environ.setdefault("CLM_TRAIN_THREADS", "1")
    # Every alert is still raised and delivered; on the console it would repeat thousands of times (as `run`).
    logging.getLogger("app.operations.alerts").setLevel(logging.ERROR)
    assert celery_app.celery_app is not None and wsgi.create_app is not None
    started = time.perf_counter()
    load = [os.getloadavg()[0]]
    results = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        result = one_files_seed(args, seed)
        load.append(os.getloadavg()[0])
        results.append(result)
        print(f"seed {seed}: {json.dumps(result)}", flush=True)
        if args.partial:
            with open(args.partial, "a") as handle:
                handle.write(json.dumps(result) + "\n")
    policies = [name for name in (*POLICIES, "full_as_traded") if results and name in results[0]]
    print(f"\n{'policy':9s} {'seed':>4s} " + " ".join(f"{m:>12s}" for m in METRICS))
    for r in results:
        for name in policies:
            print(f"{name:9s} {r['seed']:4d} " + " ".join(f"{r[name]['all'][m]:+12.4f}" for m in METRICS))
    summary = {
        "bench": "clm_value",
        "source": "files",
        "policies": policies,
        "model_types": list(MODEL_TYPES),
        "replay": results[0]["replay"] if results else None,
        "seeds": [r["seed"] for r in results],
        "metrics": {name: {r["seed"]: r[name]["all"] for r in results} for name in policies},
        "paired_test_by_month": [paired_by_month(r) for r in results if "full" in r],
        "replay_seconds": {r["seed"]: r["seconds"] for r in results},
        "seconds_per_replay_day": {
            r["seed"]: {loop: round(s / r["replay"]["days"], 2) for loop, s in r["seconds"].items()} for r in results
        },
        "stages": {r["seed"]: r["stages"] for r in results},
        "seconds": round(time.perf_counter() - started, 1),
        "load_1min": load,
    }
    print(json.dumps(summary))


def paired_by_month(result: dict[str, Any]) -> dict[str, Any]:
    """Full against frozen, Sharpe per month paired (reported, not a goal: real candles have no shift)."""
    months = sorted(result["full"]["months"])
    full = np.array([result["full"]["months"][m]["sharpe"] for m in months], dtype=float)
    frozen = np.array([result["frozen"]["months"][m]["sharpe"] for m in months], dtype=float)
    diff = full - frozen
    ok = np.isfinite(diff)
    wins, untied = int((diff[ok] > 0).sum()), int((diff[ok] != 0).sum())
    wilcoxon = stats.wilcoxon(full[ok], frozen[ok], alternative="greater") if untied >= 2 else None
    return {
        "seed": result["seed"],
        "metric": "monthly Sharpe, full - frozen",
        "months": len(months),
        "wins": wins,
        "losses": int((diff[ok] < 0).sum()),
        "ties": int((diff[ok] == 0).sum()),
        "mean_diff": float(diff[ok].mean()) if ok.any() else None,
        "wilcoxon_p": None if wilcoxon is None else float(wilcoxon.pvalue),
        "sign_test_p": float(stats.binomtest(wins, untied, 0.5, alternative="greater").pvalue) if untied else 1.0,
    }


if __name__ == "__main__":
    main()
