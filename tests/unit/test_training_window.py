"""The drift-chosen training window (app/retraining/window.py): change point, guard, fallback."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from app.core.db.models import DriftEvent
from app.core.policy import FeatureConfig
from app.data_pipeline import engineer_features
from app.data_pipeline.synthetic import synthetic_market
from app.data_pipeline.timeframes import to_ms
from app.retraining.window import (
    block_signal,
    drifted_features,
    find_change_point,
    latest_change_point,
    recent_drifted_features,
    window_from_features,
)

ORIGIN = datetime(2025, 1, 1)
SYMBOLS = ["SYNA/USDT", "SYNB/USDT"]
FEATURES = ["rvol_48", "parkinson_12", "volume_rel_48"]  # what the shift's drift check names first


def _planted(n_rows: int, change_row: int | None, seed: int, step_minutes: int = 15) -> pd.DataFrame:
    """Two symbols of one feature, iid normal; from `change_row` on its mean and spread move."""
    rng = np.random.default_rng(seed)
    stamps = to_ms(ORIGIN) + np.arange(n_rows, dtype=np.int64) * step_minutes * 60_000
    frames = []
    for _ in SYMBOLS:
        values = rng.normal(0.0, 1.0, n_rows)
        if change_row is not None:
            values[change_row:] = rng.normal(1.5, 2.0, n_rows - change_row)
        frames.append(pd.DataFrame({"timestamp": stamps, "x": values}))
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("seed", range(5))
def test_a_planted_change_point_is_found_to_the_block(seed: int) -> None:
    n_rows, change_row = 12 * 96, 9 * 96 + 8 * (seed + 1)  # 12 days of 15m rows, a change on day 9
    end = ORIGIN + timedelta(days=12)
    window = window_from_features(_planted(n_rows, change_row, seed), ["x"], ORIGIN, end, 4, 1, 1.0)
    truth = ORIGIN + timedelta(minutes=15 * change_row)
    assert window.method == "change_point" and window.change_point is not None, window.reason
    assert abs(window.change_point - truth) <= timedelta(hours=4), (window.change_point, truth)
    assert window.start == window.change_point and not window.clipped
    assert window.details["gain"] > window.details["penalty"]
    assert "change point" in window.reason


def test_the_synthetic_markets_shift_is_found_within_a_day() -> None:
    """Rolling volatility and volume features of the synthetic market (its own regime changes before
    the shift): the shift is found within 24 h for most seeds."""
    errors = []
    for seed in range(8):
        shift = ORIGIN + timedelta(days=8 + seed % 4, hours=2 * seed)
        end = ORIGIN + timedelta(days=13)
        candles, _ = synthetic_market(SYMBOLS, to_ms(ORIGIN), 13 * 96, "15m", seed, to_ms(shift))
        frame = pd.concat([engineer_features(c, FeatureConfig()) for c in candles.values()], ignore_index=True)
        start = ORIGIN + timedelta(days=1)
        frame = frame.loc[frame["timestamp"] >= to_ms(start)]
        window = window_from_features(frame, FEATURES, start, end, 4, 1, 1.0)
        assert window.change_point is not None, window.reason
        errors.append(abs((window.change_point - shift).total_seconds()) / 3600)
    assert sum(e <= 24 for e in errors) >= 7, errors


def test_the_window_starts_at_the_latest_change_not_the_strongest() -> None:
    """Two changes in 12 days: a large one on day 3, a smaller one on day 9. The window starts at the
    later: the rows between them are an older market too."""
    n_rows, early, late = 12 * 96, 3 * 96, 9 * 96
    frame = _planted(n_rows, early, 7)
    rng = np.random.default_rng(8)
    frame.loc[frame["timestamp"] >= to_ms(ORIGIN + timedelta(days=9)), "x"] += rng.normal(1.2, 0.3, 2 * (n_rows - late))
    end = ORIGIN + timedelta(days=12)
    window = window_from_features(frame, ["x"], ORIGIN, end, 4, 1, 1.0)
    assert abs(window.change_point - (ORIGIN + timedelta(days=9))) <= timedelta(hours=4), window.reason
    first, last = window.details["splits"][0], window.details["splits"][-1]
    assert abs(first["block"] - 3 * 6) <= 1 and abs(last["block"] - 9 * 6) <= 1  # 6 blocks of 4 h a day
    assert first["gain"] > last["gain"] > last["penalty"]  # the earlier change was the stronger
    assert "the latest of 2 changes" in window.reason
    assert window.details["last_gain"] is None or window.details["last_gain"] <= window.details["last_penalty"]


def test_after_the_synthetic_shift_the_latest_change_leaves_the_old_market_out() -> None:
    """Five days after the synthetic market's shift, its volatility features over a 12-day window (4
    symbols), seeds 1-10: the strongest split is an earlier volatile spell's start, days before the
    shift, in 3 seeds (measured); the latest change is within a day before and two after it in 9."""
    shift = ORIGIN + timedelta(days=18)
    symbols = [f"SYN{c}/USDT" for c in "ABCD"]
    strongest = latest = 0
    for seed in range(1, 11):
        candles, _ = synthetic_market(symbols, to_ms(ORIGIN), 23 * 96, "15m", seed, to_ms(shift))
        frame = pd.concat([engineer_features(c, FeatureConfig()) for c in candles.values()], ignore_index=True)
        frame = frame.loc[frame["timestamp"] >= to_ms(ORIGIN + timedelta(days=11))]
        signal, starts = block_signal(frame, ["natr", "parkinson_48", "parkinson_12"], 4 * 3_600_000)
        for search in (find_change_point, latest_change_point):
            index, _ = search(signal)
            hours = None if index is None else (int(starts[index]) - to_ms(shift)) / 3_600_000
            near = hours is not None and -24 <= hours <= 48
            strongest += near and search is find_change_point
            latest += near and search is latest_change_point
    assert strongest <= 8, strongest
    assert latest >= 9, latest


def test_a_change_too_near_the_end_leaves_the_minimum_window() -> None:
    n_rows = 12 * 96
    change_row = n_rows - 96  # one day before the end
    end = ORIGIN + timedelta(days=12)
    window = window_from_features(_planted(n_rows, change_row, 3), ["x"], ORIGIN, end, 4, 3, 1.0)
    assert window.change_point is not None
    assert abs(window.change_point - (end - timedelta(days=1))) <= timedelta(hours=4)
    assert window.clipped and window.start == end - timedelta(days=3)
    assert "min_window_days" in window.reason


def test_a_change_too_near_the_end_waits_when_the_policy_says_so() -> None:
    """short_window "wait": no window (no retraining) until the new market has the minimum; then
    the window starts at the change point, with no old-market rows."""
    n_rows = 12 * 96
    change_row = n_rows - 96
    end = ORIGIN + timedelta(days=12)
    early = window_from_features(_planted(n_rows, change_row, 3), ["x"], ORIGIN, end, 4, 3, 1.0, short_window="wait")
    assert early.deferred and early.start is None and not early.clipped
    assert early.change_point is not None and early.ready_at == early.change_point + timedelta(days=3)
    assert "waits until" in early.reason and "short_window" in early.reason
    later_rows = n_rows + 3 * 96  # three more days of the new market
    later_end = ORIGIN + timedelta(days=15)
    later = window_from_features(
        _planted(later_rows, change_row, 3), ["x"], ORIGIN, later_end, 4, 3, 1.0, short_window="wait"
    )
    assert not later.deferred and not later.clipped, later.reason
    assert later.start == later.change_point
    assert abs(later.start - (end - timedelta(days=1))) <= timedelta(hours=4)


def test_a_minimum_longer_than_the_lookback_keeps_the_whole_window() -> None:
    end = ORIGIN + timedelta(days=12)
    window = window_from_features(_planted(12 * 96, 6 * 96, 4), ["x"], ORIGIN, end, 4, 30, 1.0)
    assert window.clipped and window.start == ORIGIN


@pytest.mark.parametrize("seed", range(3))
def test_no_change_falls_back_to_the_normal_window(seed: int) -> None:
    end = ORIGIN + timedelta(days=12)
    window = window_from_features(_planted(12 * 96, None, seed), ["x"], ORIGIN, end, 4, 1, 1.0)
    assert window.start is None and window.change_point is None
    assert window.reason.startswith("fallback to the normal window")
    assert window.details["gain"] <= window.details["penalty"]


def test_nothing_to_search_falls_back_with_the_reason() -> None:
    end = ORIGIN + timedelta(days=12)
    window = window_from_features(pd.DataFrame(), ["x"], ORIGIN, end, 4, 1, 1.0)
    assert window.start is None and "no stored features" in window.reason
    short, details = find_change_point(np.zeros((3, 1)))
    assert short is None and details["blocks"] == 3


def test_the_penalty_is_bic_per_parameter() -> None:
    rng = np.random.default_rng(0)
    _, one = find_change_point(rng.normal(size=(100, 1)))
    _, three = find_change_point(rng.normal(size=(100, 3)))
    assert one["penalty"] == pytest.approx(3 * np.log(100), abs=1e-3)  # mean, variance, position
    assert three["penalty"] == pytest.approx((3 + 6 + 1) * np.log(100), abs=1e-3)


def test_false_alarms_on_unchanged_series_are_rare() -> None:
    """The BIC penalty against the best of ~60 candidate splits: iid series rarely pay it."""
    alarms = sum(find_change_point(np.random.default_rng(s).normal(size=(72, 1)))[0] is not None for s in range(200))
    assert alarms <= 20, alarms  # measured: 3 % at one feature


def test_the_features_searched_are_the_drift_checks_strongest(sqlite_container) -> None:
    """A feature check's findings, strongest KS first; a performance drift names none, so the
    latest feature check in the drift window is used instead."""
    at = datetime(2025, 1, 10)
    rows = [
        DriftEvent(
            detected_at=at - timedelta(days=2),
            drift_type="feature",
            feature_name="old",
            severity="high",
            created_at=at,
            metadata_={"ks_statistic": 0.9},
        ),
        DriftEvent(
            detected_at=at,
            drift_type="feature",
            feature_name="rvol_12",
            severity="high",
            created_at=at,
            metadata_={"ks_statistic": 0.4},
        ),
        DriftEvent(
            detected_at=at,
            drift_type="feature",
            feature_name="volume_z_48",
            severity="high",
            created_at=at,
            metadata_={"ks_statistic": 0.7},
        ),
        DriftEvent(
            detected_at=at,
            drift_type="performance",
            feature_name="winrate",
            severity="high",
            metadata_={},
            created_at=at,
        ),
    ]
    with sqlite_container.session() as session:
        session.add_all(rows)
        session.flush()
        ids = [r.id for r in rows]
    assert drifted_features(sqlite_container, ids[1:]) == ["volume_z_48", "rvol_12"]
    assert drifted_features(sqlite_container, [ids[3]]) == []  # a performance finding names no feature
    assert recent_drifted_features(sqlite_container, at - timedelta(days=1)) == ["volume_z_48", "rvol_12"]
    assert recent_drifted_features(sqlite_container, at + timedelta(hours=1)) == []
