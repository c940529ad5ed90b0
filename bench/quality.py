"""Forecast quality on real candles: each model's walk-forward metrics beside the baselines.

Reads every candle file of one timeframe in `--data` (default ../shared/data/ohlcv; file
names like `binance_BTCUSDT_1h.csv[.gz]`, any folder of files in that format), builds the
policy's features and labels per file (symbol = file name), and walks forward over the whole
history (`--folds` expanding folds, purged by label end): each fold trains each model type
with the policy's hyperparameters (neural step budget `--neural-steps`) and tests on the
next block beside the zero-return, persistence and buy-and-hold baselines on the same rows.
Scoring is `app/model_training/scoring.py`: one staggered book, fees on every position
change for models and baselines alike, directional accuracy on traded rows beside the share
traded, block-bootstrap `interval_95` (all symbols resampled together) for every metric and
for each difference to a baseline (`vs`).

`--set training.target=market_relative` (repeatable; the value is JSON, else a string) changes
the policy the bench trains and scores with: targets, demeaning, abstention, hyperparameters.
The tree models' best iteration (early stopping) is reported per fold. With `--versus-default`
each model is also walked under the default policy on the same folds, and `vs.default` gives the
paired difference (same bootstrap draws) of the changed policy's model to the default one.

Prints a table of the pooled test parts, then as its last line one JSON object:
{"models": {MODEL_TYPE: {metric: value, "interval_95": {...}, "vs": {...}, "per_fold": [...]}},
 "baselines": {BASELINE: {...}}, "data": {...}}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.core.policy import Policy, validate_policy
from app.core.policy.schema import deep_merge
from app.data_pipeline import engineer_features, feature_columns, generate_labels
from app.data_pipeline.files import read_candle_file
from app.forecasters import MODEL_TYPES, ForecastSpec
from app.model_training.evaluation import Scored, report, score_model, timeframe_ms
from app.model_training.scoring import BASELINES, Bootstrap, baseline_gate
from app.model_training.service import target_settings
from app.model_training.splits import walk_forward_splits
from app.model_training.storage import json_safe

SHOWN = (
    "directional_accuracy",
    "traded_share",
    "sign_accuracy",
    "rmse",
    "r2",
    "sharpe",
    "annual_return",
    "max_drawdown",
    "calibration_error",
)
COMPARED = (*BASELINES, "default")
FOLD_SHOWN = ("sharpe", "directional_accuracy", "traded_share", "annual_return")
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ohlcv"


def load(directory: Path, timeframe: str, policy: Policy, max_rows: int | None) -> pd.DataFrame:
    files = sorted(p for p in directory.iterdir() if p.name.split(".")[0].endswith(f"_{timeframe}"))
    if not files:
        raise SystemExit(f"no candle files of timeframe {timeframe} in {directory}")
    parts = []
    for path in files:
        candles, _ = read_candle_file(path, timeframe)
        if max_rows:
            candles = candles.tail(max_rows).reset_index(drop=True)
        candles = candles.assign(symbol=path.name.split(".")[0])
        features = engineer_features(candles, policy.features).assign(close=candles["close"])
        parts.append(generate_labels(features, policy.labels, close=candles["close"]))
    frame = pd.concat(parts, ignore_index=True)
    return frame.sort_values(["timestamp", "symbol"], kind="stable", ignore_index=True)


def policy_with(settings: list[str]) -> Policy:
    """The default policy with each `dotted.key=value` of `settings` set (value parsed as JSON, else a string)."""
    patch: dict[str, Any] = {}
    for item in settings:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set {item!r}: expected dotted.key=value")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = patch
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return validate_policy(deep_merge(Policy().model_dump(mode="python"), patch))


def best_iteration(model: Any) -> int | None:
    """The tree models' early-stopped iteration (0-based), else None."""
    if "best_iteration" in model.extra_state:
        return int(model.extra_state["best_iteration"])
    booster = getattr(model, "booster", None)
    value = getattr(booster, "best_iteration", None)
    return int(value) - 1 if isinstance(value, int) and value > 0 else None  # LightGBM counts from 1


def row(name: str, metrics: dict[str, Any]) -> str:
    cells = [f"{metrics[k]:>11.4f}" if isinstance(metrics[k], float) else f"{metrics[k]:>11}" for k in SHOWN]
    return f"{name:<14}" + "".join(cells)


def interval_row(metrics: dict[str, Any]) -> str:
    parts = [f"{k} [{v[0]:.3f}, {v[1]:.3f}]" for k, v in metrics.get("interval_95", {}).items()]
    versus = [
        f"Sharpe-{b} {d['sharpe_diff']:+.2f} [{d['interval_95']['sharpe_diff'][0]:+.2f}, "
        f"{d['interval_95']['sharpe_diff'][1]:+.2f}]"
        for b, d in (metrics.get("vs") or {}).items()
        if "sharpe_diff" in d.get("interval_95", {})
    ]
    return f"{'':<14}95%: " + "; ".join(parts + versus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--timeframe", default="1h")
    parser.add_argument("--models", default="xgboost,lightgbm,nhits,patchtst,naive")
    parser.add_argument("--folds", type=int, default=5, help="walk-forward folds over the whole history")
    parser.add_argument("--replicates", type=int, default=1000, help="block-bootstrap draws")
    parser.add_argument("--neural-steps", type=int, default=None, help="default: the policy's max_steps")
    parser.add_argument("--max-rows", type=int, default=None, help="last N candles per file")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--versus-default", action="store_true", help="pair each model with the default policy's")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="policy change (repeatable)")
    args = parser.parse_args()

    policy = policy_with(args.set)
    horizon = policy.labels.horizon
    step_ms = timeframe_ms(args.timeframe)
    frame = load(args.data, args.timeframe, policy, args.max_rows)
    features = feature_columns(policy.features)
    splits = walk_forward_splits(frame, args.folds, purge=horizon, val_frac=policy.training.val_frac, step_ms=step_ms)
    bootstrap = Bootstrap(replicates=args.replicates, seed=policy.training.seed)
    margin = policy.clm_config.baseline_gate.min_sharpe_margin

    models: dict[str, dict[str, Any]] = {}
    baselines: dict[str, dict[str, Any]] = {}
    for model_type in args.models.split(","):
        params_model = getattr(policy.training, model_type, None)
        params = params_model.model_dump() if params_model is not None else {}
        if MODEL_TYPES[model_type].NEEDS_GPU and args.neural_steps:
            params["max_steps"] = args.neural_steps
        model_class = MODEL_TYPES[model_type]
        spec = ForecastSpec(
            features,
            horizon,
            params,
            seed=policy.training.seed,
            threads=args.threads,
            fee_pct=policy.labels.fee_pct,
            **target_settings(model_class, policy),
        )
        default_spec = None
        if args.versus_default:
            default_params = getattr(Policy().training, model_type, None)
            default_spec = ForecastSpec(
                features,
                horizon,
                default_params.model_dump() if default_params is not None else {},
                seed=policy.training.seed,
                threads=args.threads,
                fee_pct=policy.labels.fee_pct,
                **target_settings(model_class, Policy()),
            )
        started = time.perf_counter()
        scored_folds, per_fold = [], []
        for split in splits:
            train, valid, test = (frame.iloc[rows] for rows in (split.train, split.valid, split.test))
            history = frame[frame["timestamp"] < test["timestamp"].min()]
            model = model_class(spec).fit(train, valid)
            scored, _ = score_model(model, test, history=history, step_ms=step_ms)
            if default_spec is not None:
                default = model_class(default_spec).fit(train, valid)
                plain, _ = score_model(default, test, history=history, step_ms=step_ms)
                columns = {c: "default:" + c.split(":", 1)[1] for c in plain.table.columns if c.startswith("model:")}
                scored = Scored(
                    scored.table.join(plain.table[list(columns)].rename(columns=columns)),
                    scored.errors | {"default": plain.errors["model"]},
                    scored.exact_book and plain.exact_book,
                )
            scored_folds.append(scored)
            fold = report([scored], horizon=horizon, step_ms=step_ms, bootstrap=bootstrap, compare_to=COMPARED)
            per_fold.append(
                {
                    "test_start_ms": int(test["timestamp"].min()),
                    "test_end_ms": int(test["timestamp"].max()),
                    "best_iteration": best_iteration(model),
                    "model": {k: fold["model"][k] for k in (*FOLD_SHOWN, "interval_95")},
                    **{b: {k: m[k] for k in (*FOLD_SHOWN, "interval_95")} for b, m in fold["baselines"].items()},
                }
            )
        pooled = report(scored_folds, horizon=horizon, step_ms=step_ms, bootstrap=bootstrap, compare_to=COMPARED)
        default_figures = pooled["baselines"].pop("default", None)
        gate = baseline_gate({"model": pooled["model"]}, margin=margin)
        seconds = round(time.perf_counter() - started, 2)
        models[model_type] = pooled["model"] | {"per_fold": per_fold, "gate": gate.to_dict(), "seconds": seconds}
        if default_figures is not None:
            models[model_type]["default_policy"] = default_figures
        baselines = pooled["baselines"]
        iterations = [f["best_iteration"] for f in per_fold]
        walked = f"walked {model_type} over {len(splits)} folds in {seconds} s; best iterations {iterations}"
        print(walked, file=sys.stderr, flush=True)

    print(f"{'pooled':<14}" + "".join(f" {k[:10]:>10}" for k in SHOWN))
    for name, metrics in models.items():
        print(row(name, metrics))
        print(interval_row(metrics))
        print(f"{'':<14}gate: {'PASS' if metrics['gate']['passed'] else 'REJECT'} - {metrics['gate']['reason']}")
    for name, metrics in baselines.items():
        print(row(f"[{name}]", metrics))
        print(interval_row(metrics))
    data = {
        "directory": str(args.data),
        "timeframe": args.timeframe,
        "symbols": sorted(frame["symbol"].unique().tolist()),
        "rows": len(frame),
        "folds": len(splits),
        "horizon": horizon,
        "fee_pct": policy.labels.fee_pct,
        "policy_set": args.set,
        "test_start_ms": int(frame.iloc[splits[0].test]["timestamp"].min()),
        "test_end_ms": int(frame.iloc[splits[-1].test]["timestamp"].max()),
        "bootstrap": {"replicates": bootstrap.replicates, "level": bootstrap.level},
    }
    print(json.dumps(json_safe({"models": models, "baselines": baselines, "data": data})))


if __name__ == "__main__":
    main()
