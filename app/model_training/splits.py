"""Chronological splits with a purge gap, and walk-forward folds.

All symbols share one time axis: a part is a time range, so no symbol's test rows precede
another symbol's training rows. Between two parts a gap of `purge` candles (one label
horizon) is dropped: a row's label looks `horizon` candles ahead, so without the gap the
last training labels would cover the same candles as the first test labels. The gap is
measured in time, so symbols on offset or gappy grids are purged just as well.
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


def _parts(timestamps: np.ndarray, cuts: list[int], purge_ms: int, where: str) -> list[np.ndarray]:
    """Rows in [cut_i, cut_i+1), every part after the first starting `purge_ms` later.

    A row at t has the label window (t, t + horizon]; the last row of a part is before its
    cut, the first row of the next at or after cut + horizon, so their windows are disjoint.
    """
    parts = []
    for i in range(len(cuts) - 1):
        lo = cuts[i] + (purge_ms if i > 0 else 0)
        rows = np.flatnonzero((timestamps >= lo) & (timestamps < cuts[i + 1]))
        if len(rows) == 0:
            raise SplitError(f"{where}: part {i + 1} is empty after purging {purge_ms} ms; the data is too short")
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
    purge_ms = purge * (step_ms or candle_ms(frame))
    cuts = [
        int(times[0]),
        int(times[int(n * train_frac)]),
        int(times[int(n * (train_frac + val_frac))]),
        int(times[-1]) + 1,
    ]
    train, valid, test = _parts(timestamps, cuts, purge_ms, f"a {train_frac}/{val_frac} split with purge {purge}")
    return Split(train, valid, test)


def walk_forward_splits(
    frame: pd.DataFrame, folds: int, purge: int, val_frac: float = 0.1, step_ms: int | None = None
) -> list[Split]:
    """Expanding-window folds: fold k trains on blocks 0..k (its last `val_frac` validates) and tests on block k+1."""
    if folds < 1:
        raise SplitError(f"folds must be at least 1, got {folds}")
    timestamps = frame["timestamp"].to_numpy()
    times = np.unique(timestamps)
    n = len(times)
    if n < 3 * (folds + 1):
        raise SplitError(f"{n} timestamps are too few for {folds} walk-forward folds")
    purge_ms = purge * (step_ms or candle_ms(frame))
    edges = [round(i * n / (folds + 1)) for i in range(folds + 2)]
    splits = []
    for k in range(1, folds + 1):
        seen_end = edges[k]
        train_end = int(seen_end * (1 - val_frac))
        test_end = int(times[edges[k + 1]]) if edges[k + 1] < n else int(times[-1]) + 1
        cuts = [int(times[0]), int(times[train_end]), int(times[seen_end]), test_end]
        parts = _parts(timestamps, cuts, purge_ms, f"walk-forward fold {k} of {folds} with purge {purge}")
        splits.append(Split(*parts))
    return splits
