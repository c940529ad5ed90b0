"""LightGBM on the engineered features: histogram trees, early stopping on validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.model_training.base import TARGET, Forecaster

MODEL_FILE = "model.txt"  # LightGBM's own text format


def booster_params(params: dict[str, Any], seed: int, threads: int) -> dict[str, Any]:
    """Policy.training.lightgbm -> the parameters `lightgbm.train` takes."""
    return {
        "objective": "regression",
        "num_leaves": params.get("num_leaves", 31),
        "learning_rate": params.get("learning_rate", 0.05),
        "bagging_fraction": params.get("subsample", 0.8),
        "bagging_freq": 1,
        "feature_fraction": params.get("colsample_bytree", 0.8),
        "min_child_samples": params.get("min_child_samples", 20),
        "max_bin": params.get("max_bin", 255),
        "num_threads": threads,
        "seed": seed,
        "deterministic": True,
        "verbosity": -1,
    }


class LightGBMForecaster(Forecaster):
    MODEL_TYPE = "lightgbm"
    LIBRARIES = ("lightgbm",)

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[self.spec.feature_columns].to_numpy(dtype=np.float32)

    def _fit(self, train: pd.DataFrame, valid: pd.DataFrame) -> None:
        import lightgbm as lgb

        params = self.spec.params
        lgb_params = booster_params(params, self.spec.seed, self.spec.threads)
        dtrain = lgb.Dataset(
            self._matrix(train), label=train[TARGET].to_numpy(), params={"max_bin": lgb_params["max_bin"]}
        )
        dvalid = lgb.Dataset(self._matrix(valid), label=valid[TARGET].to_numpy(), reference=dtrain)
        self.booster = lgb.train(
            lgb_params,
            dtrain,
            num_boost_round=params.get("n_estimators", 300),
            valid_sets=[dvalid],
            callbacks=[lgb.early_stopping(params.get("early_stopping_rounds", 30), verbose=False)],
        )

    def _predict_return(self, frame: pd.DataFrame, history: pd.DataFrame | None) -> np.ndarray:
        return np.asarray(
            self.booster.predict(
                self._matrix(frame),
                num_iteration=self.booster.best_iteration or None,
                # a few serving rows: one thread beats waking the pool
                num_threads=1 if len(frame) < 2048 else self.spec.threads,
            )
        )

    def _save(self, directory: Path) -> None:
        self.booster.save_model(str(directory / MODEL_FILE), num_iteration=self.booster.best_iteration or None)

    def _load(self, directory: Path) -> None:
        import lightgbm as lgb

        self.booster = lgb.Booster(model_file=str(directory / MODEL_FILE))
