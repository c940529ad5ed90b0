"""The neural models' data handling at scale: prediction windows, training segments, the calibration
sample, the scored symbols and when validation runs (no neuralforecast fit needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.forecasters.base import TARGET, ConfidenceCalibrator, ForecastSpec
from app.forecasters.neural import SEGMENT_WINDOWS
from app.forecasters.nhits_model import NHITSForecaster
from app.forecasters.patchtst_model import PatchTSTForecaster
from tests.unit.test_training_contract import HORIZON, contract_parts

FEATURES = ["log_return_1", "rsi_14"]


def _frame(symbols: int, rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = [
        pd.DataFrame(
            {
                "symbol": f"S{s}",
                "timestamp": np.arange(rows) * 300_000,
                "log_return_1": rng.normal(0, 1, rows),
                "rsi_14": rng.normal(50, 10, rows),
            }
        )
        for s in range(symbols)
    ]
    return pd.concat(parts).sort_values(["timestamp", "symbol"]).reset_index(drop=True)


def _nhits(**params: object) -> NHITSForecaster:
    model = NHITSForecaster(ForecastSpec(feature_columns=FEATURES, horizon=3, params={"input_size": 5} | params))
    model.extra_state.update(return_column="log_return_1", exog_columns=["rsi_14"], mean=[0.0, 50.0], std=[2.0, 10.0])
    return model


def test_each_prediction_window_is_the_rows_context_history_included() -> None:
    model = _nhits()
    frame = _frame(3, 40)
    history, part = frame[frame["timestamp"] < 20 * 300_000], frame[frame["timestamp"] >= 20 * 300_000]
    part = part.sample(frac=1.0, random_state=1)  # any row order: windows name the rows they belong to
    chunks = list(model._windows(part, history))
    assert len(chunks) == 3  # one per symbol (each far below PREDICT_CHUNK)
    seen = 0
    for windows, owners in chunks:
        for uid, window in windows.groupby("unique_id"):
            row = part.iloc[owners[uid]]
            earlier = frame[(frame["symbol"] == row["symbol"]) & (frame["timestamp"] <= row["timestamp"])].tail(5)
            expected = np.column_stack([earlier["log_return_1"] / 2.0, (earlier["rsi_14"] - 50.0) / 10.0])
            np.testing.assert_allclose(window[["y", "x0"]].to_numpy(), expected, rtol=1e-6)
            assert window["ds"].tolist() == list(range(len(expected)))
            seen += 1
    assert seen == len(part)


def test_the_first_rows_get_the_context_there_is() -> None:
    model = _nhits()
    frame = _frame(1, 8)
    (windows, owners), *_ = model._windows(frame, None)
    assert windows.groupby("unique_id").size().tolist() == [1, 2, 3, 4, 5, 5, 5, 5]
    assert owners.tolist() == list(range(8))


def test_training_segments_hold_every_window_once() -> None:
    model = _nhits()
    window = 5 + 3
    n = 2 * SEGMENT_WINDOWS + 100
    series = pd.DataFrame({"unique_id": "S0", "ds": np.arange(n), "y": np.arange(n, dtype=float), "x0": 0.0})
    segments = model._segments(series)
    starts = []
    for _, segment in segments.groupby("unique_id", sort=False):
        values = segment["y"].to_numpy()
        assert len(values) >= window and (np.diff(values) == 1).all()  # a contiguous stretch
        starts += [int(values[0]) + k for k in range(len(values) - window + 1)]
    assert sorted(starts) == list(range(n - window + 1))  # every window, each in exactly one segment
    assert segments["unique_id"].nunique() == 3


def test_calibration_and_scoring_samples_are_seeded_and_whole() -> None:
    model = _nhits(calibration_rows=100, score_rows=250)
    rows = model.calibration_rows(1000)
    assert rows is not None and len(rows) == 100 and len(set(rows)) == 100 and (np.diff(rows) > 0).all()
    assert np.array_equal(rows, _nhits(calibration_rows=100).calibration_rows(1000))
    assert model.calibration_rows(100) is None and _nhits(calibration_rows=0).calibration_rows(10**6) is None

    test = _frame(10, 60)  # 60 rows a symbol: five symbols hold 300 >= 250 rows
    chosen = model.scoring_symbols(test)
    assert chosen is not None and len(chosen) == 5
    later_fold = model.scoring_symbols(_frame(10, 90, seed=3))  # longer series: fewer symbols, the same order
    assert later_fold is not None and len(later_fold) == 3 and set(later_fold) < set(chosen)
    assert model.scoring_symbols(test.head(250)) is None and _nhits(score_rows=0).scoring_symbols(test) is None


def test_validation_runs_only_when_early_stopping_could_stop() -> None:
    assert not _nhits().early_stopping_can_stop()  # 100 steps, a check every 20, patience 5: never stops
    assert _nhits(max_steps=200).early_stopping_can_stop()
    assert not _nhits(max_steps=200, early_stop_patience_steps=-1).early_stopping_can_stop()
    patchtst = PatchTSTForecaster(ForecastSpec(feature_columns=FEATURES, horizon=3))
    assert not patchtst.early_stopping_can_stop()


def test_a_sampled_calibration_is_the_calibration_of_those_rows_predicted_in_full() -> None:
    """The sample's predictions (context: the training tail, then the validation rows before each)
    are the predictions those rows get when every validation row is predicted."""
    train, valid, _, features = contract_parts()
    params = NHITSForecaster.TINY_PARAMS | {"calibration_rows": 40}
    model = NHITSForecaster(ForecastSpec(features, HORIZON, params, seed=7, threads=1)).fit(train, valid)
    rows = model.calibration_rows(len(valid))
    assert rows is not None and len(rows) == 40 < len(valid)
    everything = model.predict_return(valid, history=train)
    expected = ConfidenceCalibrator.fit(everything[rows], valid[TARGET].to_numpy(dtype=float)[rows])
    assert (model.calibrator.x, model.calibrator.y) == (expected.x, expected.y)
    assert set(model.timings) == {"fit", "calibration"} and all(v >= 0 for v in model.timings.values())
