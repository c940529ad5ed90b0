"""Training cost of every model type, beside the bare library call on the same data.

XGBoost and LightGBM at the specification's scale (default 2.6 million rows x 60 features,
synthetic long-format data: symbols x candles); the neural models on a smaller series set
with a stated step budget (`--neural-steps`, early stopping as in training). "fit" is our
`Forecaster.fit` (input checks, matrix extraction, early stopping, confidence calibration on
the validation rows); "bare" is the library's own training call on the same train and
validation arrays with the same parameters. `peak_mb` is the peak resident memory of the
process during our fit and predict (sampled every 20 ms), minus the memory before it.

Last line: {"models": {MODEL_TYPE: {"rows", "features", "fit_seconds", "predict_seconds",
"bare_fit_seconds", "overhead_ratio", "peak_mb", ...}}, "settings": {...}}
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.core.policy import Policy
from app.forecasters import MODEL_TYPES, ForecastSpec
from app.forecasters.base import TARGET
from app.model_training.splits import chronological_split

HOUR_MS = 3_600_000


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class PeakMemory:
    """Peak RSS above the starting level while the block runs."""

    def __enter__(self) -> PeakMemory:
        self.start = self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())

    @property
    def used_mb(self) -> float:
        return round(self.peak - self.start, 1)


def synthetic_frame(rows: int, features: int, symbols: int, horizon: int, seed: int) -> tuple[pd.DataFrame, list[str]]:
    """Long format: `symbols` random walks, `features` columns (ret_1 first), a weak planted signal."""
    rng = np.random.default_rng(seed)
    per_symbol = rows // symbols
    n = per_symbol * symbols
    returns = rng.normal(0, 0.01, (symbols, per_symbol + horizon)).astype(np.float32)
    log_close = np.cumsum(returns, axis=1)
    future = (log_close[:, horizon:] - log_close[:, :-horizon]).reshape(-1)
    names = ["ret_1", *[f"f{i}" for i in range(features - 1)]]
    block = rng.standard_normal((n, features), dtype=np.float32)
    block[:, 0] = returns[:, :per_symbol].reshape(-1)
    future = future + 0.002 * block[:, 1]  # something to learn
    frame = pd.DataFrame(block, columns=names, copy=False)
    frame.insert(0, "timestamp", np.tile(np.arange(per_symbol, dtype=np.int64) * HOUR_MS, symbols))
    frame.insert(0, "symbol", np.repeat([f"S{i:03d}" for i in range(symbols)], per_symbol))
    frame[TARGET] = future
    frame["direction"] = np.sign(future).astype(np.int8)
    frame = frame.sort_values(["timestamp", "symbol"], kind="stable", ignore_index=True)
    return frame, names


def bare_xgboost(spec: ForecastSpec, train: pd.DataFrame, valid: pd.DataFrame) -> None:
    import xgboost as xgb

    from app.forecasters.xgboost_model import XGBoostParams, booster_params

    p = spec.params
    dtrain = xgb.QuantileDMatrix(
        train[spec.feature_columns].to_numpy(np.float32), label=train[TARGET].to_numpy(), max_bin=p["max_bin"]
    )
    dvalid = xgb.DMatrix(valid[spec.feature_columns].to_numpy(np.float32), label=valid[TARGET].to_numpy())
    xgb.train(
        booster_params(XGBoostParams.model_validate(p), spec.seed, spec.threads, spec.device),
        dtrain,
        num_boost_round=p["n_estimators"],
        evals=[(dvalid, "valid")],
        early_stopping_rounds=p["early_stopping_rounds"],
        verbose_eval=False,
    )


def bare_lightgbm(spec: ForecastSpec, train: pd.DataFrame, valid: pd.DataFrame) -> None:
    import lightgbm as lgb

    from app.forecasters.lightgbm_model import LightGBMParams, booster_params

    p = spec.params
    params = booster_params(LightGBMParams.model_validate(p), spec.seed, spec.threads)
    dtrain = lgb.Dataset(train[spec.feature_columns].to_numpy(np.float32), label=train[TARGET].to_numpy())
    dvalid = lgb.Dataset(
        valid[spec.feature_columns].to_numpy(np.float32), label=valid[TARGET].to_numpy(), reference=dtrain
    )
    lgb.train(
        params,
        dtrain,
        num_boost_round=p["n_estimators"],
        valid_sets=[dvalid],
        callbacks=[lgb.early_stopping(p["early_stopping_rounds"], verbose=False)],
    )


def bare_neural(model_type: str) -> Callable[[ForecastSpec, pd.DataFrame, pd.DataFrame], None]:
    def run(spec: ForecastSpec, train: pd.DataFrame, valid: pd.DataFrame) -> None:
        import neuralforecast.models as nf_models
        import torch
        from neuralforecast import NeuralForecast

        torch.set_num_threads(spec.threads)  # as our fit does: same thread count for both
        p = spec.params
        exog = ["f0", "f1", "f2", "f3"] if model_type == "nhits" else []  # what N-HiTS picks: 4 after ret_1
        series = pd.concat([train, valid]).sort_values(["symbol", "timestamp"], kind="stable")
        df = pd.DataFrame({"unique_id": series["symbol"].to_numpy(), "y": series["ret_1"].to_numpy() * 100})
        for name in exog:
            df[name] = series[name].to_numpy()
        df["ds"] = df.groupby("unique_id").cumcount()
        extra = {"patch_len": p["patch_len"], "stride": p["stride"]} if model_type == "patchtst" else {}
        model = getattr(nf_models, "NHITS" if model_type == "nhits" else "PatchTST")(
            h=spec.horizon,
            input_size=p["input_size"],
            max_steps=p["max_steps"],
            learning_rate=p["learning_rate"],
            batch_size=p["batch_size"],
            val_check_steps=p["val_check_steps"],
            early_stop_patience_steps=p["early_stop_patience_steps"],
            random_seed=spec.seed,
            accelerator="gpu" if spec.device == "cuda" else "cpu",
            devices=1,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            logger=False,
            **({"hist_exog_list": exog} if exog else {}),
            **extra,
        )
        val_size = int(valid.groupby("symbol").size().min())
        NeuralForecast(models=[model], freq=1).fit(df=df, val_size=val_size)

    return run


def bare_naive(spec: ForecastSpec, train: pd.DataFrame, valid: pd.DataFrame) -> None:
    """Nothing to train: the bare cost of a persistence forecast is zero."""


BARE = {"xgboost": bare_xgboost, "lightgbm": bare_lightgbm, "nhits": bare_neural("nhits")}
BARE |= {"patchtst": bare_neural("patchtst"), "naive": bare_naive}


def measure(
    model_type: str, frame: pd.DataFrame, features: list[str], params: dict[str, Any], args: Any
) -> dict[str, Any]:
    horizon = args.horizon
    split = chronological_split(frame, 0.8, 0.1, purge=horizon, step_ms=HOUR_MS)
    train, valid, test = (frame.iloc[rows] for rows in (split.train, split.valid, split.test))
    spec = ForecastSpec(features, horizon, params, seed=42, threads=args.threads, device="cpu")
    # Library imports (seconds for neuralforecast) are paid before either clock starts.
    for library in MODEL_TYPES[model_type].LIBRARIES:
        importlib.import_module(library)
    if MODEL_TYPES[model_type].NEEDS_GPU:
        importlib.import_module("neuralforecast.models")
    # Bare first, ours second: any remaining warm-up favours the bare call.
    started = time.perf_counter()
    BARE[model_type](spec, train, valid)
    bare_seconds = time.perf_counter() - started
    with PeakMemory() as memory:
        started = time.perf_counter()
        model = MODEL_TYPES[model_type](spec).fit(train, valid)
        fit_seconds = time.perf_counter() - started
        started = time.perf_counter()
        model.predict(test, history=valid)
        predict_seconds = time.perf_counter() - started
    sequence_inputs = model.extra_state.get("exog_columns", []) if "return_column" in model.extra_state else None
    inputs_used = len(features) if sequence_inputs is None else 1 + len(sequence_inputs)
    return {
        "rows": len(train) + len(valid),
        "features": inputs_used,
        "fit_seconds": round(fit_seconds, 3),
        "predict_seconds": round(predict_seconds, 3),
        "predict_rows": len(test),
        "bare_fit_seconds": round(bare_seconds, 3),
        "overhead_ratio": round(fit_seconds / bare_seconds, 3) if bare_seconds > 0.01 else None,
        "peak_mb": memory.used_mb,
        **({"max_steps": params["max_steps"], "input_size": params["input_size"]} if "max_steps" in params else {}),
        **({"trees": params["n_estimators"]} if "n_estimators" in params else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_600_000, help="rows for XGBoost and LightGBM")
    parser.add_argument("--features", type=int, default=60)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--neural-rows", type=int, default=20_000, help="rows (4 symbols) for N-HiTS and PatchTST")
    parser.add_argument("--neural-steps", type=int, default=50, help="the neural models' step budget")
    parser.add_argument("--horizon", type=int, default=12)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--models", default="xgboost,lightgbm,nhits,patchtst,naive")
    args = parser.parse_args()

    policy = Policy().training
    results: dict[str, Any] = {}
    big: tuple[pd.DataFrame, list[str]] | None = None
    for model_type in args.models.split(","):
        params = getattr(policy, model_type).model_dump() if hasattr(policy, model_type) else {}
        if MODEL_TYPES[model_type].NEEDS_GPU:
            params["max_steps"] = args.neural_steps
            frame, features = synthetic_frame(args.neural_rows, args.features, 4, args.horizon, seed=1)
        else:
            if big is None:
                big = synthetic_frame(args.rows, args.features, args.symbols, args.horizon, seed=0)
            frame, features = big
        results[model_type] = measure(model_type, frame, features, params, args)
        print(model_type, json.dumps(results[model_type]), flush=True)
    settings = {k: v for k, v in vars(args).items() if k != "models"}
    print(json.dumps({"models": results, "settings": settings, "load_average": os.getloadavg()}))


if __name__ == "__main__":
    main()
