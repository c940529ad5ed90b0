"""LightGBM on the engineered features: histogram trees, early stopping on validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from app.forecasters.base import FitProgress, Forecaster, ModelParams

MODEL_FILE = "model.txt"  # LightGBM's own text format


class LightGBMParams(ModelParams):
    n_estimators: int = Field(300, ge=1)
    num_leaves: int = Field(31, ge=2)
    learning_rate: float = Field(0.05, gt=0, le=1)
    subsample: float = Field(0.8, gt=0, le=1)
    colsample_bytree: float = Field(0.8, gt=0, le=1)
    min_child_samples: int = Field(20, ge=1)
    early_stopping_rounds: int = Field(30, ge=1)
    max_bin: int = Field(255, ge=2)


def booster_params(params: LightGBMParams, seed: int, threads: int) -> dict[str, Any]:
    """Policy.training.lightgbm -> the parameters `lightgbm.train` takes."""
    return {
        "objective": "regression",
        "num_leaves": params.num_leaves,
        "learning_rate": params.learning_rate,
        "bagging_fraction": params.subsample,
        "bagging_freq": 1,
        "feature_fraction": params.colsample_bytree,
        "min_child_samples": params.min_child_samples,
        "max_bin": params.max_bin,
        "num_threads": threads,
        "seed": seed,
        "deterministic": True,
        "verbosity": -1,
    }


class TreesBuilt:
    """A LightGBM callback (called with its `CallbackEnv` after every iteration): reports the trees built
    so far of the budget. It runs before early stopping's own callback (LightGBM orders them by `order`;
    early stopping's is 30), so the tree that ends the fit is reported too."""

    def __init__(self, report: FitProgress) -> None:
        self.report, self.built = report, 0
        self.order = 0  # an instance attribute: LightGBM sets a default one on the instance otherwise

    def __call__(self, env: Any) -> None:
        self.built = env.iteration - env.begin_iteration + 1
        self.report("trees", self.built, env.end_iteration - env.begin_iteration)


class LightGBMForecaster(Forecaster):
    MODEL_TYPE = "lightgbm"
    FITS_TARGETS = True
    LIBRARIES = ("lightgbm",)
    Params = LightGBMParams
    params: LightGBMParams
    TINY_PARAMS = {"n_estimators": 30, "num_leaves": 15}

    def _matrix(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[self.spec.feature_columns].to_numpy(dtype=np.float32)

    def _fit(self, train: pd.DataFrame, valid: pd.DataFrame) -> None:
        import lightgbm as lgb  # deferred: a heavy library, loaded only where this type trains or loads

        params = self.params
        lgb_params = booster_params(params, self.spec.seed, self.spec.threads)
        dtrain = lgb.Dataset(
            self._matrix(train), label=self.fit_target(train), params={"max_bin": lgb_params["max_bin"]}
        )
        dvalid = lgb.Dataset(self._matrix(valid), label=self.fit_target(valid), reference=dtrain)
        trees = TreesBuilt(self.fit_progress)
        self.booster = lgb.train(
            lgb_params,
            dtrain,
            num_boost_round=params.n_estimators,
            valid_sets=[dvalid],
            callbacks=[trees, lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
        )
        # The trees built (the returned booster keeps only those up to the best iteration).
        self.fit_progress("trees", trees.built, trees.built)

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
        import lightgbm as lgb  # deferred: a heavy library, loaded only where this type trains or loads

        self.booster = lgb.Booster(model_file=str(directory / MODEL_FILE))
