"""Chronological splits purged by each row's label end, and walk-forward folds.

All symbols share one time axis: a part is a time range, so no symbol's test rows precede
another symbol's training rows. A row's label ends `purge` rows (one label horizon) later
in its symbol's rows, which is later than `purge` candles when the exchange had an outage
in between; every row of a part whose label ends at or after the next part's start is
dropped (López de Prado, AFML ch. 7), so no label of an earlier part reaches into a later
one. The label end is the frame's `label_end` column when it has one, otherwise the
timestamp of the symbol's row `purge` rows later (past the last rows: `purge` candles).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


class SplitError(ValueError):
    """The data is too short for the requested split."""


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # row positions into the frame
    valid: np.ndarray
    test: np.ndarray


def candle_ms(frame: pd.DataFrame) -> int:
    """The candle length: the most common gap between one symbol's consecutive timestamps."""
    gaps = frame.sort_values(["symbol", "timestamp"]).groupby("symbol")["timestamp"].diff().dropna()
    gaps = gaps[gaps > 0]
    return int(gaps.mode().iloc[0]) if len(gaps) else 60_000


def label_ends(frame: pd.DataFrame, horizon: int, step_ms: int) -> np.ndarray:
    """Per row, the timestamp where its label ends: `label_end`, or its symbol's row `horizon` rows later."""
    if "label_end" in frame.columns:
        return frame["label_end"].to_numpy(dtype=np.int64)
    stamps = frame["timestamp"].to_numpy(dtype=np.int64)
    later = frame.groupby("symbol", sort=False)["timestamp"].shift(-horizon).to_numpy()
    ends = np.where(np.isnan(later.astype(float)), -1, later).astype(np.int64)
    # The last `horizon` rows of a symbol: their labels end past the frame, `horizon` candles on at least.
    last = frame.groupby("symbol", sort=False)["timestamp"].transform("max").to_numpy(dtype=np.int64)
    rank = frame.groupby("symbol", sort=False).cumcount(ascending=False).to_numpy()
    beyond = last + (horizon - rank) * step_ms
    return np.where(ends < 0, np.maximum(beyond, stamps + horizon * step_ms), ends)


def _parts(timestamps: np.ndarray, ends: np.ndarray, cuts: list[int], where: str) -> list[np.ndarray]:
    """Rows in [cut_i, cut_i+1) whose labels end before cut_i+1 (the last part: every row)."""
    parts = []
    last = len(cuts) - 2
    for i in range(len(cuts) - 1):
        inside = (timestamps >= cuts[i]) & (timestamps < cuts[i + 1])
        if i < last:
            inside &= ends < cuts[i + 1]
        rows = np.flatnonzero(inside)
        if len(rows) == 0:
            raise SplitError(f"{where}: part {i + 1} is empty after purging by label end; the data is too short")
        parts.append(rows)
    return parts


def chronological_split(
    frame: pd.DataFrame, train_frac: float, val_frac: float, purge: int, step_ms: int | None = None
) -> Split:
    """Train, validation, test by time (fractions of the distinct timestamps), `purge` candles between parts."""
    if not (0 < train_frac < 1 and 0 < val_frac < 1 and train_frac + val_frac < 1):
        raise SplitError(f"fractions must be in (0, 1) and leave a test part: {train_frac}, {val_frac}")
    timestamps = frame["timestamp"].to_numpy()
    times = np.unique(timestamps)
    n = len(times)
    if n < 3:
        raise SplitError(f"{n} timestamps are too few to split")
    ends = label_ends(frame, purge, step_ms or candle_ms(frame))
    cuts = [
        int(times[0]),
        int(times[int(n * train_frac)]),
        int(times[int(n * (train_frac + val_frac))]),
        int(times[-1]) + 1,
    ]
    train, valid, test = _parts(timestamps, ends, cuts, f"a {train_frac}/{val_frac} split with purge {purge}")
    return Split(train, valid, test)


def walk_forward_splits(
    frame: pd.DataFrame, folds: int, purge: int, val_frac: float = 0.1, step_ms: int | None = None
) -> list[Split]:
    """Expanding-window folds: fold k trains on blocks 0..k (its last `val_frac` validates) and tests on block k+1.

    The validation part holds at least 2 x `purge` timestamps: purged by label end, a shorter one
    loses every row (a few days of 15m candles: 10 timestamps against a 12-candle horizon)."""
    if folds < 1:
        raise SplitError(f"folds must be at least 1, got {folds}")
    timestamps = frame["timestamp"].to_numpy()
    times = np.unique(timestamps)
    n = len(times)
    if n < 3 * (folds + 1):
        raise SplitError(f"{n} timestamps are too few for {folds} walk-forward folds")
    ends = label_ends(frame, purge, step_ms or candle_ms(frame))
    edges = [round(i * n / (folds + 1)) for i in range(folds + 2)]
    splits = []
    for k in range(1, folds + 1):
        seen_end = edges[k]
        train_end = min(int(seen_end * (1 - val_frac)), seen_end - 2 * purge)
        if train_end < 1:
            raise SplitError(f"{n} timestamps are too few for {folds} walk-forward folds with purge {purge}")
        test_end = int(times[edges[k + 1]]) if edges[k + 1] < n else int(times[-1]) + 1
        cuts = [int(times[0]), int(times[train_end]), int(times[seen_end]), test_end]
        parts = _parts(timestamps, ends, cuts, f"walk-forward fold {k} of {folds} with purge {purge}")
        splits.append(Split(*parts))
    return splits
