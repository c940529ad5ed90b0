"""The trivial forecasters: persistence (the last horizon's return repeats) or zero return.

No training cost; used as a legitimate baseline model type and for "trivial training" in the
orchestration's tests and benchmarks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from app.forecasters.base import Forecaster, ForecasterInputError, ModelParams
from app.forecasters.neural import find_return_column


def past_horizon_return(
    frame: pd.DataFrame, history: pd.DataFrame | None, return_column: str, horizon: int
) -> np.ndarray:
    """Per row, the sum of the last `horizon` one-candle log returns up to that row (its symbol's)."""
    parts = [frame[["symbol", "timestamp", return_column]].assign(_row=np.arange(len(frame)))]
    if history is not None and len(history):
        parts.insert(0, history[["symbol", "timestamp", return_column]].assign(_row=-1))
    joined = pd.concat(parts, ignore_index=True).sort_values(["symbol", "timestamp", "_row"], kind="stable")
    joined = joined.drop_duplicates(["symbol", "timestamp"], keep="last")
    rolled = joined.groupby("symbol")[return_column].transform(lambda s: s.rolling(horizon, min_periods=1).sum())
    out = np.zeros(len(frame))
    mask = joined["_row"].to_numpy() >= 0
    out[joined["_row"].to_numpy()[mask]] = rolled.to_numpy()[mask]
    return np.nan_to_num(out)


class NaiveParams(ModelParams):
    mode: Literal["persistence", "zero"] = "persistence"


class NaiveForecaster(Forecaster):
    MODEL_TYPE = "naive"
    SUPPORTS_EXOGENOUS = False
    Params = NaiveParams
    params: NaiveParams

    def _fit(self, train: pd.DataFrame, valid: pd.DataFrame) -> None:
        mode: str = self.params.mode
        column = None
        if mode == "persistence":
            try:
                column = find_return_column(self.spec.feature_columns)
            except ForecasterInputError:
                mode = "zero"  # nothing to persist: the zero-return forecast is the honest fallback
        self.extra_state.update(mode=mode, return_column=column)

    def _predict_return(self, frame: pd.DataFrame, history: pd.DataFrame | None) -> np.ndarray:
        if self.extra_state["mode"] == "zero":
            return np.zeros(len(frame))
        return past_horizon_return(frame, history, self.extra_state["return_column"], self.spec.horizon)

    def _save(self, directory: Path) -> None:
        """Everything lives in forecaster.json."""

    def _load(self, directory: Path) -> None:
        """Everything lives in forecaster.json."""
