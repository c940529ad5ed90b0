"""Chronological splits with a purge gap, and walk-forward folds.

All symbols share one time axis: a part is a range of distinct timestamps, so no symbol's
test rows precede another symbol's training rows. Between two parts, `purge` timestamps
(one label horizon) are dropped: a row's label looks `horizon` candles ahead, so without
the gap the last training labels would overlap the first test rows' windows.
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


def _positions(codes: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.flatnonzero((codes >= lo) & (codes < hi))


def _time_codes(frame: pd.DataFrame) -> tuple[int, np.ndarray]:
    """The number of distinct timestamps and each row's rank among them."""
    times, codes = np.unique(frame["timestamp"].to_numpy(), return_inverse=True)
    return len(times), codes


def chronological_split(frame: pd.DataFrame, train_frac: float, val_frac: float, purge: int) -> Split:
    """Train, validation, test by time (fractions of the distinct timestamps), purged between parts."""
    if not (0 < train_frac < 1 and 0 < val_frac < 1 and train_frac + val_frac < 1):
        raise SplitError(f"fractions must be in (0, 1) and leave a test part: {train_frac}, {val_frac}")
    n, codes = _time_codes(frame)
    train_end = int(n * train_frac)
    valid_end = int(n * (train_frac + val_frac))
    bounds = [(0, train_end), (train_end + purge, valid_end), (valid_end + purge, n)]
    if any(hi - lo < 1 for lo, hi in bounds):
        raise SplitError(f"{n} timestamps are too few for a {train_frac}/{val_frac} split with purge {purge}")
    train, valid, test = (_positions(codes, lo, hi) for lo, hi in bounds)
    return Split(train, valid, test)


def walk_forward_splits(
    frame: pd.DataFrame, folds: int, purge: int, val_frac: float = 0.1, min_train_blocks: int = 1
) -> list[Split]:
    """Expanding-window folds: fold k trains on blocks 0..k (its last `val_frac` validates) and tests on block k+1."""
    if folds < 1:
        raise SplitError(f"folds must be at least 1, got {folds}")
    n, codes = _time_codes(frame)
    blocks = folds + min_train_blocks
    edges = [round(i * n / blocks) for i in range(blocks + 1)]
    splits = []
    for k in range(folds):
        seen_end = edges[k + min_train_blocks]
        train_end = int(seen_end * (1 - val_frac))
        bounds = [(0, train_end), (train_end + purge, seen_end), (seen_end + purge, edges[k + min_train_blocks + 1])]
        if any(hi - lo < 1 for lo, hi in bounds):
            raise SplitError(f"{n} timestamps are too few for {folds} walk-forward folds with purge {purge}")
        splits.append(Split(*(_positions(codes, lo, hi) for lo, hi in bounds)))
    return splits
