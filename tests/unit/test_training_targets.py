"""Targets and decisions that can carry signal: net-of-fee classes, the market-relative target
(traded as a long/short book), the training mean removed, and abstention on low confidence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.core.policy import LabelConfig, Policy
from app.data_pipeline import generate_labels, market_relative_return, net_of_fee_class
from app.forecasters import MODEL_TYPES, ForecastSpec
from app.forecasters.base import TARGET, ConfidenceCalibrator, Forecaster, ForecasterInputError, ModelParams
from app.model_training.evaluation import report, score_model, score_part
from app.model_training.scoring import market_neutral, strategy_table
from app.model_training.service import target_settings

HOUR = 3_600_000
FEE = 0.1  # percent per side: the round trip is log(1.002) = 0.0019980


def test_net_of_fee_class_is_up_down_or_no_trade_beyond_the_round_trip() -> None:
    returns = np.array([0.003, -0.003, 0.001, -0.0015, np.nan, 0.0020, -0.0019, 0.0])
    assert net_of_fee_class(returns, FEE).tolist() == [1, -1, 0, 0, 0, 1, 0, 0]
    # No fee: any move is a class.
    assert net_of_fee_class(np.array([1e-9, -1e-9, 0.0]), 0.0).tolist() == [1, -1, 0]
    # The labels' direction is that class of the horizon's move: closes 100 -> 100.1 (+0.1 %, inside
    # the 0.2 % round trip), 100.1 -> 100.5, 100.5 -> 100.0.
    candles = pd.DataFrame({"close": [100.0, 100.1, 100.5, 100.0] * 60})
    labels = generate_labels(candles, LabelConfig(horizon=1, fee_pct=FEE, regime_window=5))
    expected = net_of_fee_class(np.log(labels["close"].shift(-1) / labels["close"]).to_numpy(), FEE)
    # generate_labels drops the warm-up rows; compare where the next close is in the frame
    assert (labels["direction"].to_numpy()[:-1] == expected[:-1]).all()
    assert set(labels["direction"].unique()) == {-1, 0, 1}


def test_the_market_relative_return_is_the_return_less_the_cross_sections_mean() -> None:
    frame = pd.DataFrame(
        {
            "timestamp": [0, 0, 0, HOUR, HOUR, 2 * HOUR],
            "symbol": ["A", "B", "C", "A", "B", "A"],
            TARGET: [0.03, 0.00, -0.03, 0.02, 0.04, 0.05],
        }
    )
    assert market_relative_return(frame).tolist() == pytest.approx([0.03, 0.0, -0.03, -0.01, 0.01, 0.0])
    with pytest.raises(ValueError, match="lacks columns"):
        market_relative_return(frame.drop(columns=["timestamp"]))


def drifting_market(rows: int = 1500, symbols: int = 3, seed: int = 3, signal: float = 0.0) -> pd.DataFrame:
    """Every symbol drifts up together (a common factor); `edge` announces each symbol's own move."""
    rng = np.random.default_rng(seed)
    common = 0.004 + rng.normal(0, 0.01, rows + 1)
    parts = []
    for k in range(symbols):
        own = rng.normal(0, 0.01, rows + 1)
        close = 100 * np.exp(np.cumsum(common + own))
        future = np.log(close[1:] / close[:rows])
        parts.append(
            pd.DataFrame(
                {
                    "symbol": f"S{k}",
                    "timestamp": np.arange(rows, dtype=np.int64) * HOUR,
                    "close": close[:rows],
                    "edge": signal * own[1:] + rng.normal(0, 0.01, rows),
                    "noise": rng.normal(0, 1, rows),
                    TARGET: future,
                    "direction": net_of_fee_class(future, FEE),
                }
            )
        )
    return pd.concat(parts, ignore_index=True).sort_values(["timestamp", "symbol"], ignore_index=True)


def fitted(frame: pd.DataFrame, **spec: object) -> Forecaster:
    cut, end = int(len(frame) * 0.6), int(len(frame) * 0.8)
    model_spec = ForecastSpec(["edge", "noise"], 1, {"n_estimators": 40, "max_depth": 3}, threads=1, **spec)  # type: ignore[arg-type]
    return MODEL_TYPES["xgboost"](model_spec).fit(frame.iloc[:cut], frame.iloc[cut:end])


def test_the_model_learns_the_target_the_spec_names() -> None:
    frame = drifting_market()
    train = frame.iloc[: int(len(frame) * 0.6)]
    relative = fitted(frame, target="market_relative")
    by_time = pd.Series(relative.fit_target(train)).groupby(train["timestamp"].to_numpy()).sum()
    assert np.abs(by_time.to_numpy()).max() < 1e-12  # zero-sum at every time
    assert set(fitted(frame, target="net_of_fee_class").fit_target(train)) == {-1.0, 0.0, 1.0}
    demeaned = fitted(frame, demean_target=True)
    assert demeaned.extra_state["target_mean"] == pytest.approx(train[TARGET].mean())
    assert demeaned.fit_target(train).mean() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ForecasterInputError, match="unknown target"):
        fitted(frame, target="sharpe")
    with pytest.raises(ForecasterInputError, match="only the plain return"):
        MODEL_TYPES["naive"](ForecastSpec(["ret_1"], 1, {}, target="market_relative"))


def test_removing_the_training_mean_stops_the_drift_bet() -> None:
    """No signal, a strong common drift: the plain model goes long on (nearly) every row, the demeaned
    one forecasts deviations around zero and its directions are no longer all long."""
    frame = drifting_market(signal=0.0)
    test = frame.iloc[int(len(frame) * 0.8) :]
    plain = fitted(frame).predict(test)
    demeaned = fitted(frame, demean_target=True).predict(test)
    spec_zone = ForecastSpec([], 1).dead_zone
    assert plain["predicted_return"].mean() > spec_zone  # the training mean (about 0.004) is past the fee
    assert (plain["direction"] == 1).mean() > 0.9
    assert abs(demeaned["predicted_return"].mean()) < plain["predicted_return"].mean() / 4
    assert (demeaned["direction"] == 1).mean() < 0.6


def test_a_market_relative_forecast_is_scored_as_the_long_short_book_it_trades() -> None:
    # A rises 1 % a candle, B is flat: relative to the market A is up, B down.
    n, horizon = 40, 2
    close_a, close_b = 100 * 1.01 ** np.arange(n + horizon), np.full(n + horizon, 100.0)
    frame = pd.concat(
        [
            pd.DataFrame(
                {
                    "symbol": s,
                    "timestamp": np.arange(n, dtype=np.int64) * HOUR,
                    "close": c[:n],
                    TARGET: np.log(c[horizon:] / c[:n]),
                    "direction": 0,
                }
            )
            for s, c in (("A", close_a), ("B", close_b))
        ],
        ignore_index=True,
    ).sort_values(["timestamp", "symbol"], ignore_index=True)
    a_rows = (frame["symbol"] == "A").to_numpy()
    all_up = np.ones(len(frame))
    assert market_neutral(all_up, frame["timestamp"].to_numpy()).tolist() == [0.0] * len(frame)
    right = np.where(a_rows, 1.0, -1.0)
    wrong = -right
    table, exact = strategy_table(
        frame,
        {"all_up": all_up, "right": right, "wrong": wrong, "long": all_up},
        horizon=horizon,
        fee_pct=FEE,
        step_ms=HOUR,
        neutral=("all_up", "right", "wrong"),
    )
    assert exact
    # "Up" on every symbol is no view on the market-relative move: nothing is traded, nothing earned.
    assert table["all_up:net"].abs().max() == 0 and table["all_up:positioned"].sum() == 0
    # Scored plainly, the same forecasts would ride A's rise (the flattering score this avoids).
    assert table["long:net"].sum() > 0.05
    # Long A, short B earns A's rise less B's; the opposite loses it; fees on both legs.
    per_candle = 0.01 / 2  # half the capital in A, gross
    assert table["right:net"].iloc[horizon:n].mean() == pytest.approx(per_candle, rel=1e-6)
    assert table["right:net"].sum() + table["wrong:net"].sum() == pytest.approx(-4 * 2 * FEE / 100 / 2, rel=1e-6)
    assert (table["right:hits"] == table["right:traded"]).all() and table["wrong:hits"].sum() == 0

    # score_model trades a market-relative model so: "A up, B inside the dead zone" is long A and
    # short B by half each (plainly scored it would be long A alone, riding the market).
    class Relative(Forecaster):
        MODEL_TYPE = "relative_oracle"
        FITS_TARGETS = True
        Params = ModelParams

        def _fit(self, train: pd.DataFrame, valid: pd.DataFrame) -> None: ...

        def _predict_return(self, frame: pd.DataFrame, history: pd.DataFrame | None) -> np.ndarray:
            return np.where(frame["symbol"] == "A", 0.01, 0.001)

        def _save(self, directory: Path) -> None: ...

        def _load(self, directory: Path) -> None: ...

    frame = frame.assign(feature=0.0)
    oracle = Relative(ForecastSpec(["feature"], horizon, fee_pct=FEE, target="market_relative"))
    oracle.fit(frame, frame)
    scored, _ = score_model(oracle, frame, step_ms=HOUR)
    model = report([scored], horizon=horizon, step_ms=HOUR)["model"]
    assert model["directional_accuracy"] == 1.0 and model["traded_share"] == 1.0
    half, _ = strategy_table(frame, {"half": right / 2}, horizon=horizon, fee_pct=FEE, step_ms=HOUR)
    assert model["annual_return"] == pytest.approx(half["half:net"].mean() * 365 * 24, rel=1e-9)


class Signal(Forecaster):
    """Forecasts the `signal` column; confidence calibrated by hand in the tests."""

    MODEL_TYPE = "signal"
    Params = ModelParams

    def _fit(self, train: pd.DataFrame, valid: pd.DataFrame) -> None: ...

    def _predict_return(self, frame: pd.DataFrame, history: pd.DataFrame | None) -> np.ndarray:
        return frame["signal"].to_numpy(dtype=float)

    def _save(self, directory: Path) -> None: ...

    def _load(self, directory: Path) -> None: ...


def test_a_row_under_the_confidence_threshold_is_not_traded_in_scoring() -> None:
    frame = drifting_market(rows=200, symbols=2)
    frame = frame.assign(signal=np.linspace(-0.02, 0.02, len(frame)))
    calibrator = ConfidenceCalibrator(x=[0.0, 0.02], y=[0.4, 0.8])  # |p| 0.01 -> 0.6
    models = {}
    for threshold in (0.0, 0.6):
        model = Signal(ForecastSpec(["signal"], 1, fee_pct=FEE, min_confidence=threshold))
        model.fitted, model.calibrator = True, calibrator
        models[threshold] = model
    all_rows = models[0.0].predict(frame)
    confident = all_rows["confidence"].to_numpy() >= 0.6  # |p| >= 0.01
    gated = models[0.6].predict(frame)
    assert (gated["direction"][~confident] == 0).all() and (all_rows["direction"][~confident] != 0).any()
    assert (gated["direction"][confident] == all_rows["direction"][confident]).all()
    assert (gated["confidence"] == all_rows["confidence"]).all()  # the confidence is still reported

    scored, _ = score_model(models[0.6], frame, step_ms=HOUR)
    expected = np.where(confident, all_rows["direction"], 0)
    by_hand = score_part(
        frame,
        None,
        {"model": (all_rows["predicted_return"].to_numpy(), expected, all_rows["confidence"].to_numpy())},
        horizon=1,
        fee_pct=FEE,
        step_ms=HOUR,
    )
    assert scored.table["model:net"].tolist() == pytest.approx(by_hand.table["model:net"].tolist())
    shares = {
        t: report([score_model(m, frame, step_ms=HOUR)[0]], horizon=1, step_ms=HOUR)["model"] for t, m in models.items()
    }
    assert shares[0.6]["traded_share"] == pytest.approx(confident.mean())
    assert shares[0.0]["traded_share"] > shares[0.6]["traded_share"]


def test_a_served_model_abstains_under_its_threshold_after_a_save_and_load(tmp_path: Path) -> None:
    frame = drifting_market(signal=1.0)
    model = fitted(frame, min_confidence=0.55)
    test = frame.iloc[int(len(frame) * 0.8) :]
    predicted, direction, confidence = model.predict_arrays(test)
    low = confidence < 0.55
    assert low.any() and (~low).any()
    assert (direction[low] == 0).all() and (direction[~low] != 0).any()
    model.save(tmp_path)
    served = MODEL_TYPES["xgboost"].load(tmp_path)  # what the prediction cache loads and calls
    assert served.spec.min_confidence == 0.55
    again = served.predict_arrays(test)
    assert (again[1] == direction).all() and again[0] == pytest.approx(predicted)


def test_an_abstention_gives_its_reason_in_figures_that_read_below_the_threshold() -> None:
    model = Signal(ForecastSpec(["signal"], 1, fee_pct=FEE, min_confidence=0.5))
    assert model.abstain_reason(0.47) == "confidence 0.47 below min_confidence 0.50"
    assert model.abstain_reason(0.4999) == "confidence 0.4999 below min_confidence 0.50"  # never "0.50 below 0.50"
    assert model.abstain_reason(0.5) is None and model.abstain_reason(0.93) is None
    assert Signal(ForecastSpec(["signal"], 1, fee_pct=FEE, min_confidence=0.999)).abstain_reason(0.6) == (
        "confidence 0.60 below min_confidence 0.999"
    )
    assert Signal(ForecastSpec(["signal"], 1, fee_pct=FEE)).abstain_reason(0.1) is None  # no threshold: never


def test_the_policy_sets_the_target_of_the_types_that_learn_it_and_abstention_for_all() -> None:
    policy = Policy.model_validate(
        {"training": {"target": "market_relative", "demean_target": True, "min_confidence": 0.52}}
    )
    assert target_settings(MODEL_TYPES["xgboost"], policy) == {
        "target": "market_relative",
        "demean_target": True,
        "min_confidence": 0.52,
    }
    naive_settings = target_settings(MODEL_TYPES["naive"], policy)
    assert naive_settings == {"min_confidence": 0.52}
    naive = MODEL_TYPES["naive"](ForecastSpec(["ret_1"], 1, {}, **naive_settings))
    assert naive.spec.target == "return" and naive.spec.min_confidence == 0.52
    defaults = target_settings(MODEL_TYPES["lightgbm"], Policy())
    assert defaults == {"target": "return", "demean_target": False, "min_confidence": 0.0}
