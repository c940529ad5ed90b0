"""How many days of a new market does a retrained model need before it beats the frozen one? (issue 17)

The loop can only pay after a shift if a model retrained on the new market is better than the
model trained before it, and if the shadow test can see that. This measures both without the
loop, on the synthetic market with its injected shift (`app/data_pipeline/synthetic.py`, the
main run's market), per seed:

- **frozen**: the model type trained on the `--training-days` before the replay, with the main
  run's small hyperparameters (`RunConfig.policy_patch`), as the run's first models;
- **retrained**: the same type trained on the first W days after the shift, for each W of
  `--window-days` (the policy's chronological split inside the window, purged by label end);
- both tested on the same rows: from the end of the longest window (plus a label horizon) to the
  end of the series, on every candle and symbol ("all") and on one candle an hour per symbol (the
  calls an engine asking hourly gives a shadow test).

Per W: the retrained model's correlation with the label; the net PnL per row after fees as the
shadow test counts it (`per_sample_pnl`: the served direction times the label, minus the round
trip on every traded row) and its difference to frozen, each with a 95 % t-interval over the
seeds (independent markets: a seed's overlapping labels and correlated symbols stay inside its
value); and the difference to frozen under the shadow test's own block-robust
t-test (`TimeBlocks`, blocks of two label horizons, all symbols together): in how many seeds the
retrained model is ahead, and in how many the test would see it at its first look (one-sided
p < 0.025). The ceiling: the correlation of the single feature that best predicts the label on
the test rows themselves (an oracle, not a model: what the window could teach at most).

    .venv/bin/python bench/learnability.py --seeds 10 --symbols 4 --window-days 2,3,5,8

Prints a table, then as its last line one JSON object (rows, seconds, peak memory, the frozen
baseline of the same run and the figures per window).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.policy import Policy, validate_policy
from app.core.policy.schema import deep_merge
from app.data_pipeline import engineer_features, feature_columns, generate_labels
from app.data_pipeline.synthetic import synthetic_market
from app.data_pipeline.timeframes import timeframe_ms
from app.forecasters import MODEL_TYPES, ForecastSpec
from app.model_training.service import target_settings
from app.model_training.splits import chronological_split
from app.shadow_tester.stats import TimeBlocks, paired_block_us, per_sample_pnl, round_trip_fee
from app.simulation.config import DEFAULT_START, RunConfig

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def run_policy(symbols: list[str], training_days: float) -> Policy:
    """The main run's policy (small trees, its timeframe) for these symbols."""
    patch = RunConfig(symbols=tuple(symbols), training_days=training_days).policy_patch()
    return validate_policy(deep_merge(Policy().model_dump(mode="python"), patch))


def market_rows(seed: int, symbols: list[str], policy: Policy, days: float, shift_day: float) -> pd.DataFrame:
    step = timeframe_ms(policy.data.timeframe)
    periods = int(days * DAY_MS / step)
    candles, _ = synthetic_market(
        symbols, DEFAULT_START, periods, policy.data.timeframe, seed=seed, shift_at=int(shift_day * DAY_MS / step)
    )
    parts = []
    for symbol in symbols:
        one = candles[symbol]
        features = engineer_features(one, policy.features).assign(close=one["close"])
        parts.append(generate_labels(features, policy.labels, close=one["close"]).assign(symbol=symbol))
    frame = pd.concat(parts, ignore_index=True).sort_values(["timestamp", "symbol"], kind="stable", ignore_index=True)
    frame["day"] = (frame["timestamp"] - int(candles[symbols[0]]["timestamp"].iloc[0])) / DAY_MS
    return frame


def fitted(model_type: str, policy: Policy, rows: pd.DataFrame, step: int) -> Any:
    """The type trained on `rows` by the policy's chronological split (train, early-stopping validation)."""
    model_class = MODEL_TYPES[model_type]
    spec = ForecastSpec(
        feature_columns(policy.features),
        policy.labels.horizon,
        getattr(policy.training, model_type).model_dump(),
        seed=policy.training.seed,
        threads=2,
        fee_pct=policy.labels.fee_pct,
        **target_settings(model_class, policy),
    )
    rows = rows.reset_index(drop=True)
    split = chronological_split(
        rows, policy.training.train_frac, policy.training.val_frac, purge=spec.horizon, step_ms=step
    )
    return model_class(spec).fit(rows.iloc[split.train], rows.iloc[split.valid])


def versus(difference: np.ndarray, stamps_ms: np.ndarray, block_us: float) -> float:
    """One-sided p-value (retrained better) of the shadow test's block-robust t-test."""
    return TimeBlocks(block_us).extended(difference, stamps_ms.astype(np.float64) * 1000).p_values()[0]


def one_seed(args: argparse.Namespace, seed: int, windows: list[float]) -> dict[str, Any]:
    symbols = [f"SYN{chr(ord('A') + k)}/USDT" for k in range(args.symbols)]
    policy = run_policy(symbols, args.training_days)
    step = timeframe_ms(policy.data.timeframe)
    history = args.training_days
    shift = history + args.shift_after_days
    frame = market_rows(seed, symbols, policy, shift + max(windows) + args.test_days, shift)
    horizon_days = policy.labels.horizon * step / DAY_MS
    test = frame[frame["day"] >= shift + max(windows) + horizon_days]
    stamps = test["timestamp"].to_numpy(dtype=np.int64)
    hourly = stamps % HOUR_MS == 0
    label = test["future_return"].to_numpy()
    fee = round_trip_fee(policy.labels.fee_pct)
    block_us = paired_block_us(policy.labels.horizon, step)
    frozen = fitted(args.model_type, policy, frame[frame["day"] < history], step)
    frozen_pnl = per_sample_pnl(frozen.predict(test)["direction"].to_numpy(), label, fee)
    features = feature_columns(policy.features)
    ceiling = float(np.nanmax(np.abs(test[features].corrwith(test["future_return"]).to_numpy())))
    out: dict[str, Any] = {
        "seed": seed,
        "test_rows": len(test),
        "test_calls": int(hourly.sum()),
        "ceiling_corr": round(ceiling, 3),
        "frozen_pnl_bp": round(1e4 * float(frozen_pnl.mean()), 2),
        "windows": {},
    }
    for days in windows:
        window = frame[(frame["day"] >= shift) & (frame["day"] < shift + days)]
        model = fitted(args.model_type, policy, window, step)
        predicted = model.predict(test)
        pnl = per_sample_pnl(predicted["direction"].to_numpy(), label, fee)
        difference = pnl - frozen_pnl
        out["windows"][str(days)] = {
            "corr": round(float(np.corrcoef(predicted["predicted_return"], label)[0, 1]), 3),
            "pnl_bp": round(1e4 * float(pnl.mean()), 2),
            "ahead_all": bool(difference.mean() > 0),
            "p_all": versus(difference, stamps, block_us),
            "p_calls": versus(difference[hourly], stamps[hourly], block_us),
        }
    return out


def interval_95(values: np.ndarray) -> list[float] | None:
    """The mean's 95 % t-interval over seeds: independent markets, so each seed's overlapping labels and
    correlated symbols stay inside its one value (None below two seeds)."""
    if len(values) < 2:
        return None
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return [round(float(values.mean()) - half, 2), round(float(values.mean()) + half, 2)]


def summary(seeds: list[dict[str, Any]], windows: list[float], level: float) -> dict[str, Any]:
    out = {}
    frozen = np.array([s["frozen_pnl_bp"] for s in seeds])
    for days in windows:
        cells = [s["windows"][str(days)] for s in seeds]
        corr = np.array([c["corr"] for c in cells])
        pnl = np.array([c["pnl_bp"] for c in cells])
        out[str(days)] = {
            "corr_mean": round(float(corr.mean()), 3),
            "corr_sd": round(float(corr.std(ddof=1)), 3) if len(cells) > 1 else None,
            "pnl_bp_mean": round(float(pnl.mean()), 2),
            "pnl_bp_interval_95": interval_95(pnl),
            "vs_frozen_bp_mean": round(float((pnl - frozen).mean()), 2),
            "vs_frozen_bp_interval_95": interval_95(pnl - frozen),
            "ahead_of_frozen": sum(c["ahead_all"] for c in cells),
            "seen_first_look_all_rows": sum(c["p_all"] < level for c in cells),
            "seen_first_look_hourly_calls": sum(c["p_calls"] < level for c in cells),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--symbols", type=int, default=4)
    parser.add_argument("--model-type", default="xgboost", choices=("xgboost", "lightgbm"))
    parser.add_argument("--training-days", type=float, default=12.0, help="the frozen model's history")
    parser.add_argument("--shift-after-days", type=float, default=2.0, help="days after the history")
    parser.add_argument("--window-days", default="2,3,5,8", help="days of the new market trained on")
    parser.add_argument("--test-days", type=float, default=9.0, help="after the longest window")
    parser.add_argument("--level", type=float, default=0.025, help="the shadow test's first-look level")
    args = parser.parse_args()
    windows = sorted(float(w) for w in args.window_days.split(","))
    started = time.perf_counter()
    seeds = [one_seed(args, seed, windows) for seed in range(args.first_seed, args.first_seed + args.seeds)]
    seconds = time.perf_counter() - started
    table = summary(seeds, windows, args.level)
    frozen = [s["frozen_pnl_bp"] for s in seeds]
    print(f"frozen after the shift: {np.mean(frozen):+.2f} bp a row (seeds {len(seeds)}); "
          f"ceiling corr {np.mean([s['ceiling_corr'] for s in seeds]):.3f}")  # fmt: skip
    columns = ("days", "corr", "bp a row", "vs frozen [95 %]", "ahead", "seen all", "seen hourly")
    print(" ".join(f"{name:>{width}}" for name, width in zip(columns, (5, 12, 9, 26, 6, 9, 12), strict=True)))
    for days, row in table.items():
        print(
            f"{days:>5} {row['corr_mean']:>6.3f} ±{row['corr_sd'] or 0:.3f} {row['pnl_bp_mean']:>+9.2f} "
            f"{row['vs_frozen_bp_mean']:>+8.2f} {row['vs_frozen_bp_interval_95']!s:>17} "
            f"{row['ahead_of_frozen']:>6} {row['seen_first_look_all_rows']:>9} "
            f"{row['seen_first_look_hourly_calls']:>12}"
        )
    print(
        json.dumps(
            {
                "model_type": args.model_type,
                "symbols": args.symbols,
                "seeds": len(seeds),
                "rows_tested": int(sum(s["test_rows"] for s in seeds)),
                "seconds": round(seconds, 1),
                "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "baseline": {"frozen_pnl_bp_mean": round(float(np.mean(frozen)), 2), "zero_return_pnl_bp": 0.0},
                "ceiling_corr_mean": round(float(np.mean([s["ceiling_corr"] for s in seeds])), 3),
                "level": args.level,
                "windows": table,
                "per_seed": seeds,
            }
        )
    )


if __name__ == "__main__":
    main()
