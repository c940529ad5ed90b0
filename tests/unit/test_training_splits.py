"""Purged chronological splits and walk-forward folds: no test label window overlaps a training one."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from app.model_training.splits import Split, SplitError, chronological_split, walk_forward_splits

STEP = 300_000  # 5m candles


def market(rows: int = 1200) -> pd.DataFrame:
    """Three symbols: one complete, one with an outage, one whose candles start later."""
    full = np.arange(rows) * STEP
    gappy = np.delete(full, np.arange(rows // 3, rows // 3 + rows // 20))
    late = full[rows // 12 :]
    parts = [pd.DataFrame({"symbol": s, "timestamp": t}) for s, t in (("A", full), ("B", gappy), ("C", late))]
    return pd.concat(parts, ignore_index=True).sort_values(["timestamp", "symbol"]).reset_index(drop=True)


def assert_purged(frame: pd.DataFrame, split: Split, horizon: int) -> None:
    """Label window of a row at t: (t, t + horizon candles]. Later parts start after earlier windows end."""
    ts = frame["timestamp"].to_numpy()
    parts = [ts[split.train], ts[split.valid], ts[split.test]]
    for earlier, later in ((0, 1), (1, 2), (0, 2)):
        assert parts[earlier].max() + horizon * STEP <= parts[later].min(), (earlier, later)
    assert not set(split.train) & set(split.test)
    assert not set(split.valid) & set(split.test)


@pytest.mark.parametrize("horizon", [1, 12, 48])
def test_chronological_split_purges_one_horizon_between_parts(horizon: int) -> None:
    frame = market()
    split = chronological_split(frame, 0.8, 0.1, purge=horizon)
    assert_purged(frame, split, horizon)
    total = len(split.train) + len(split.valid) + len(split.test)
    assert 0.72 < len(split.train) / len(frame) < 0.85  # the purge now trims the end of the training part
    # Only the purge gaps are dropped (about one horizon per symbol per gap).
    assert len(frame) - total <= 2 * 3 * horizon


def test_without_purge_the_windows_would_overlap() -> None:
    """The check above can fail: with no purge the first test label overlaps the last training one."""
    frame = market()
    split = chronological_split(frame, 0.8, 0.1, purge=0)
    with pytest.raises(AssertionError):
        assert_purged(frame, split, 12)


def test_walk_forward_folds_expand_and_are_purged() -> None:
    frame = market()
    folds = walk_forward_splits(frame, folds=5, purge=12)
    assert len(folds) == 5
    ts = frame["timestamp"].to_numpy()
    for fold in folds:
        assert_purged(frame, fold, 12)
    assert all(len(a.train) < len(b.train) for a, b in itertools.pairwise(folds))
    assert all(ts[a.test].max() < ts[b.test].min() for a, b in itertools.pairwise(folds))


def test_walk_forward_on_a_few_days_keeps_a_validation_part() -> None:
    """Three days of 15m candles (about 280 timestamps), 2 folds, horizon 12: each fold's validation
    keeps rows after the purge (at 10 % it held 9 timestamps, all purged, and the folds failed)."""
    frame = market(rows=284)
    for fold in walk_forward_splits(frame, folds=2, purge=12):
        assert_purged(frame, fold, 12)
        assert len(fold.valid) > 0 and len(fold.test) > 0 and len(fold.train) > len(fold.valid)


def test_too_short_data_is_refused_with_a_reason() -> None:
    frame = market(rows=40)
    with pytest.raises(SplitError, match=r"too short|too few"):
        chronological_split(frame, 0.8, 0.1, purge=12)
    with pytest.raises(SplitError, match="leave a test part"):
        chronological_split(frame, 0.9, 0.1, purge=1)


def test_a_cut_at_an_outage_leaves_no_training_label_ending_inside_validation() -> None:
    """Real 1h candles with a 3-hour outage: the cut falls just before it, inside the last labels' windows."""
    from tests.unit.training_helpers import labelled_frame

    horizon, hour = 12, 3_600_000
    frame, _ = labelled_frame(last_rows=None, horizon=horizon)
    stamps = np.unique(frame["timestamp"].to_numpy())
    outage = int(np.flatnonzero(np.diff(stamps) > 2 * hour)[0])  # the last candle before the first outage
    assert stamps[outage + 1] - stamps[outage] == 4 * hour
    cut = outage - 3  # the train part ends 4 candles before the outage: its last labels span it
    split = chronological_split(frame, cut / len(stamps), 0.1, purge=horizon, step_ms=hour)
    ts = frame["timestamp"].to_numpy()
    sorted_frame = frame.sort_values(["symbol", "timestamp"])
    label_end = sorted_frame.groupby("symbol")["timestamp"].shift(-horizon).reindex(frame.index).to_numpy()
    first_valid = ts[split.valid].min()
    assert np.nanmax(label_end[split.train]) < first_valid
    # The old purge in time (train before the cut, validation from `horizon` candles after it)
    # kept training labels that end inside validation: the outage stretches them.
    cut_ms = int(stamps[cut])
    valid_by_time = ts[ts >= cut_ms + horizon * hour].min()
    assert np.nanmax(label_end[ts < cut_ms]) >= valid_by_time
