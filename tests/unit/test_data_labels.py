"""Labels: future return, fee-sized dead zone, regimes, dropped rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.core.policy import LabelConfig
from app.data_pipeline import LABEL_COLUMNS, REGIMES, dead_zone, engineer_features, generate_labels
from app.data_pipeline.labels import label_warmup_rows


def test_future_return_and_direction_on_real_candles(data_dir: Path) -> None:
    candles = pd.read_csv(data_dir / "binance_BTCUSDT_5m_4w.csv")
    config = LabelConfig(horizon=12, fee_pct=0.1)
    labelled = generate_labels(candles, config)
    close = candles["close"].to_numpy()
    rows = labelled.index.to_numpy()
    np.testing.assert_allclose(labelled["future_return"], np.log(close[rows + 12] / close[rows]))
    zone = dead_zone(config)
    assert zone == pytest.approx(np.log(1.002))
    fr = labelled["future_return"]
    assert (labelled.loc[fr > zone, "direction"] == 1).all()
    assert (labelled.loc[fr < -zone, "direction"] == -1).all()
    assert (labelled.loc[fr.abs() <= zone, "direction"] == 0).all()
    assert set(labelled["direction"].unique()) == {-1, 0, 1}
    # no row whose horizon passes the end; the first rows wait for the regime windows
    assert rows.max() == len(candles) - 1 - 12
    assert rows.min() == label_warmup_rows(config)
    assert set(labelled["regime"].unique()) <= set(REGIMES)
    assert list(labelled.columns[-3:]) == list(LABEL_COLUMNS)


def test_a_larger_fee_widens_the_flat_band(data_dir: Path) -> None:
    candles = pd.read_csv(data_dir / "binance_ETHUSDT_1h.csv")
    cheap = generate_labels(candles, LabelConfig(fee_pct=0.01))
    dear = generate_labels(candles, LabelConfig(fee_pct=0.5))
    assert (dear["direction"] == 0).mean() > (cheap["direction"] == 0).mean()


def _series(returns: np.ndarray) -> pd.DataFrame:
    close = 100 * np.exp(np.cumsum(returns))
    return pd.DataFrame({"timestamp": np.arange(len(close)) * 300_000, "close": close})


def test_regimes_of_constructed_markets() -> None:
    rng = np.random.default_rng(3)
    window = 48
    config = LabelConfig(regime_window=window, horizon=1)
    calm = rng.normal(0, 0.001, 600)
    trend = np.r_[calm, rng.normal(0.002, 0.001, 300)]
    labels = generate_labels(_series(trend), config)
    assert (labels.loc[labels.index >= 700, "regime"] == "TRENDING").mean() > 0.9
    burst = np.r_[calm, rng.normal(0, 0.005, 200)]
    labels = generate_labels(_series(burst), config)
    assert (labels.loc[(labels.index >= 610) & (labels.index < 660), "regime"] == "VOLATILE").mean() > 0.9
    # back and forth around a level (no net move): RANGING when quieter than before, CHOPPY when livelier
    alternating = 0.001 * (-1.0) ** np.arange(300)
    labels = generate_labels(_series(np.r_[rng.normal(0, 0.004, 400), alternating]), config)
    assert (labels.loc[(labels.index >= 450) & (labels.index < 590), "regime"] == "RANGING").all()
    labels = generate_labels(_series(np.r_[rng.normal(0, 0.0008, 400), 1.3 * alternating]), config)
    assert (labels.loc[(labels.index >= 450) & (labels.index < 590), "regime"] == "CHOPPY").all()


def test_labels_join_a_feature_frame_through_close(data_dir: Path) -> None:
    candles = pd.read_csv(data_dir / "binance_SOLUSDT_1h.csv")
    features = engineer_features(candles)
    labelled = generate_labels(features, LabelConfig(), close=candles["close"])
    assert labelled.index.isin(features.index).all()
    with pytest.raises(ValueError, match="close"):
        generate_labels(features, LabelConfig())


def test_too_short_input_gives_no_rows() -> None:
    frame = _series(np.full(10, 0.001))
    assert generate_labels(frame, LabelConfig()).empty
    assert generate_labels(frame.iloc[:0], LabelConfig()).empty
