"""What a forecaster learns: the targets built from a frame's labels (pure numpy/pandas).

- `net_of_fee_class`: up (1) / down (-1) / no trade (0), whether the move over the horizon
  exceeds the round-trip fee (the labels' `direction`, López de Prado's fixed-horizon
  barrier at the fee);
- `market_relative_return`: a symbol's label minus the cross-section's mean at the same
  timestamp (the symbols move together; what is left is the symbol's own move).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TARGETS = ("return", "net_of_fee_class", "market_relative")


def net_of_fee_class(future_return: np.ndarray, fee_pct: float) -> np.ndarray:
    """Up (1) / down (-1) / no trade (0): whether the move over the horizon (a log return) exceeds
    the round trip of `fee_pct` percent a side. NaN (no label) is 0."""
    zone = float(np.log1p(2.0 * fee_pct / 100.0))
    future_return = np.asarray(future_return, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(future_return > zone, 1, np.where(future_return < -zone, -1, 0)).astype(np.int8)


def market_relative_return(frame: pd.DataFrame, column: str = "future_return") -> np.ndarray:
    """Per row, `column` minus the mean of `column` over the frame's rows with the same timestamp
    (the cross-section: every symbol at that time). A timestamp with one symbol gives 0."""
    missing = [c for c in ("timestamp", column) if c not in frame.columns]
    if missing:
        raise ValueError(f"market_relative_return: the frame lacks columns {missing}")
    values = frame[column].to_numpy(dtype=np.float64)
    mean = frame[column].groupby(frame["timestamp"].to_numpy()).transform("mean").to_numpy(dtype=np.float64)
    return values - mean
