"""Forecast quality on real candles: each model's test metrics beside the baselines.

Reads every candle file of one timeframe in `--data` (default ../shared/data/ohlcv; file
names like `binance_BTCUSDT_1h.csv[.gz]`, any folder of files in that format), builds the
policy's features and labels per file (symbol = file name), splits all symbols by time
80/10/10 with a purge of one horizon, trains each model type with the policy's
hyperparameters (neural step budget `--neural-steps`), and evaluates on the test part
beside the zero-return, persistence and buy-and-hold baselines on the same rows.

Prints a table, then as its last line one JSON object:
{"models": {MODEL_TYPE: {metric: value}}, "baselines": {BASELINE: {metric: value}}, "data": {...}}
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

from app.core.policy import Policy
from app.data_pipeline import engineer_features, feature_columns, generate_labels
from app.data_pipeline.files import read_candle_file
from app.forecasters import MODEL_TYPES, ForecastSpec
from app.model_training.evaluation import evaluate_model, timeframe_ms
from app.model_training.splits import chronological_split

SHOWN = (
    "directional_accuracy",
    "accuracy",
    "f1",
    "rmse",
    "r2",
    "sharpe",
    "max_drawdown",
    "calibration_error",
    "trades",
)
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
        features = engineer_features(candles, policy.features)
        parts.append(generate_labels(features, policy.labels, close=candles["close"]))
    frame = pd.concat(parts, ignore_index=True)
    return frame.sort_values(["timestamp", "symbol"], kind="stable", ignore_index=True)


def row(name: str, metrics: dict[str, Any]) -> str:
    cells = [f"{metrics[k]:>11.4f}" if isinstance(metrics[k], float) else f"{metrics[k]:>11}" for k in SHOWN]
    return f"{name:<14}" + "".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--timeframe", default="1h")
    parser.add_argument("--models", default="xgboost,lightgbm,nhits,patchtst,naive")
    parser.add_argument("--neural-steps", type=int, default=None, help="default: the policy's max_steps")
    parser.add_argument("--max-rows", type=int, default=None, help="last N candles per file")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    policy = Policy()
    horizon = policy.labels.horizon
    step_ms = timeframe_ms(args.timeframe)
    frame = load(args.data, args.timeframe, policy, args.max_rows)
    features = feature_columns(policy.features)
    split = chronological_split(frame, policy.training.train_frac, policy.training.val_frac, horizon, step_ms)
    train, valid, test = (frame.iloc[rows] for rows in (split.train, split.valid, split.test))
    history = frame[frame["timestamp"] < test["timestamp"].min()]

    models: dict[str, dict[str, Any]] = {}
    baselines: dict[str, dict[str, Any]] = {}
    for model_type in args.models.split(","):
        params_model = getattr(policy.training, model_type, None)
        params = params_model.model_dump() if params_model is not None else {}
        if MODEL_TYPES[model_type].NEEDS_GPU and args.neural_steps:
            params["max_steps"] = args.neural_steps
        spec = ForecastSpec(features, horizon, params, seed=policy.training.seed, threads=args.threads)
        started = time.perf_counter()
        model = MODEL_TYPES[model_type](spec).fit(train, valid)
        result = evaluate_model(model, test, history=history, step_ms=step_ms)
        models[model_type] = result["model"] | {"fit_seconds": round(time.perf_counter() - started, 2)}
        baselines = result["baselines"]
        print(f"trained {model_type} in {models[model_type]['fit_seconds']} s", file=sys.stderr, flush=True)

    print(f"{'':<14}" + "".join(f" {k[:10]:>10}" for k in SHOWN))
    for name, metrics in models.items():
        print(row(name, metrics))
    for name, metrics in baselines.items():
        print(row(f"[{name}]", metrics))
    data = {
        "directory": str(args.data),
        "timeframe": args.timeframe,
        "symbols": sorted(frame["symbol"].unique().tolist()),
        "rows": {"train": len(train), "validation": len(valid), "test": len(test)},
        "horizon": horizon,
        "test_start_ms": int(test["timestamp"].min()),
        "test_end_ms": int(test["timestamp"].max()),
    }
    print(json.dumps({"models": models, "baselines": baselines, "data": data}))


if __name__ == "__main__":
    main()
