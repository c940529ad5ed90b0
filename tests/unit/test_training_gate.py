"""The baseline gate: only a model that beats zero return and buy-and-hold after fees goes live."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.core.policy import Policy
from app.forecasters import MODEL_TYPES, ForecastSpec
from app.forecasters.base import TARGET, Forecaster, ModelParams
from app.model_registry import ModelRegistry
from app.model_training.service import cross_validate, gate_verdict
from app.prediction.service import PredictionService

HOUR = 3_600_000
HORIZON = 4


class MeanForecaster(Forecaster):
    """Learns only the training period's mean return."""

    MODEL_TYPE = "mean_only"
    Params = ModelParams

    def _fit(self, train: pd.DataFrame, valid: pd.DataFrame) -> None:
        self.extra_state["mean"] = float(train[TARGET].mean())

    def _predict_return(self, frame: pd.DataFrame, history: pd.DataFrame | None) -> np.ndarray:
        return np.full(len(frame), self.extra_state["mean"])

    def _save(self, directory: Path) -> None: ...

    def _load(self, directory: Path) -> None: ...


def symbol_frame(k: int, close: np.ndarray, future: np.ndarray, **features: np.ndarray) -> pd.DataFrame:
    """Symbol S`k`'s hourly rows: its close, the given feature columns, the label `future` and its sign."""
    rows = len(future)
    return pd.DataFrame(
        {
            "symbol": f"S{k}",
            "timestamp": np.arange(rows, dtype=np.int64) * HOUR,
            "close": close[:rows],
            **features,
            TARGET: future,
            "direction": np.sign(future).astype(int),
        }
    )


def planted_market(rows: int = 3000, symbols: int = 2, seed: int = 5) -> pd.DataFrame:
    """Drifting up (so always-long is a fair baseline) with a feature that announces the next moves."""
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(symbols):
        moves = 0.0008 + rng.normal(0, 0.01, rows + HORIZON)
        close = 100 * np.exp(np.cumsum(moves))
        future = np.log(close[HORIZON:] / close[:rows])
        parts.append(
            symbol_frame(k, close, future, signal=future + rng.normal(0, 0.01, rows), noise=rng.normal(0, 1, rows))
        )
    return pd.concat(parts, ignore_index=True).sort_values(["timestamp", "symbol"], ignore_index=True)


def verdict(model_class: type[Forecaster], params: dict, policy: Policy | None = None) -> dict:
    frame = planted_market()
    spec = ForecastSpec(["signal", "noise"], HORIZON, params, threads=1, fee_pct=0.1)
    cv = cross_validate(model_class, spec, frame, folds=3, step_ms=HOUR)
    return gate_verdict(cv, policy or Policy())


def test_a_model_that_learns_only_the_mean_is_rejected_with_the_figures() -> None:
    gate = verdict(MeanForecaster, {})
    assert gate["passed"] is False and gate["enforced"] is True
    # Always long: buy-and-hold's book exactly, so no edge over it.
    assert "buy_and_hold" in gate["reason"] and "interval" in gate["reason"]
    assert gate["figures"]["buy_and_hold"]["sharpe_diff"] == pytest.approx(0.0, abs=1e-9)


def test_a_model_with_planted_signal_passes() -> None:
    gate = verdict(MODEL_TYPES["xgboost"], {"n_estimators": 60, "max_depth": 3})
    assert gate["passed"] is True, gate["reason"]
    assert gate["figures"]["zero_return"]["interval_95"][0] > 0
    assert gate["figures"]["buy_and_hold"]["interval_95"][0] > 0


def test_the_gate_off_is_said_loudly(caplog: pytest.LogCaptureFixture) -> None:
    policy = Policy.model_validate({"clm_config": {"baseline_gate": {"enabled": False}}})
    gate = verdict(MeanForecaster, {}, policy)
    assert gate["passed"] is True and gate["would_pass"] is False and gate["enforced"] is False
    assert gate["reason"].startswith("BASELINE GATE OFF")
    assert any("BASELINE GATE OFF" in record.message for record in caplog.records)


def _trained(container, gate: dict | None) -> dict:  # type: ignore[no-untyped-def]
    run = uuid.uuid4().hex[:8]
    stored = container.artifacts.put_bytes(f"models/xgboost/{run}/forecaster.json", json.dumps({"r": run}).encode())
    metrics = {"gate": gate} if gate is not None else {}
    return {"model_type": "xgboost", "file_path": stored.path, "sha256": stored.sha256, "metrics": metrics}


def test_the_registry_rejects_a_model_that_failed_the_gate_and_the_type_abstains(sqlite_container) -> None:
    registry = ModelRegistry(sqlite_container)
    failed = {"passed": False, "reason": "fails the baseline gate after fees: Sharpe +0.00 vs buy_and_hold"}
    model_id = registry.register_model(_trained(sqlite_container, failed))
    record = registry.get_model(model_id)
    assert record.status == "REJECTED" and registry.get_active_model("xgboost") is None
    history = registry.status_history("xgboost")
    assert "Sharpe +0.00 vs buy_and_hold" in history[-1]["reason"]

    answer = PredictionService(sqlite_container, "xgboost").predict("BTCUSDT")
    assert answer.direction == 0 and answer.confidence == 0.0 and answer.predicted_return == 0.0
    assert answer.abstained is True and answer.model_id == ""
    assert answer.abstain_reason and answer.abstain_reason.startswith("no xgboost model passed the baseline gate")
    assert "Sharpe +0.00 vs buy_and_hold" in answer.abstain_reason

    passed = {"passed": True, "reason": "beats the baselines after fees"}
    assert registry.get_model(registry.register_model(_trained(sqlite_container, passed))).status == "ACTIVE"


# --------------------------------------------------------------------------- the market-neutral book


def relative_market(rows: int = 3000, symbols: int = 3, seed: int = 7, drift: float = 0.008) -> pd.DataFrame:
    """Every symbol rides a strong common uptrend (buy-and-hold's Sharpe is high); `signal` announces
    each symbol's move relative to the others, `noise` nothing."""
    rng = np.random.default_rng(seed)
    common = drift + rng.normal(0, 0.004, rows + HORIZON)
    parts = []
    for k in range(symbols):
        close = 100 * np.exp(np.cumsum(common + rng.normal(0, 0.01, rows + HORIZON)))
        future = np.log(close[HORIZON:] / close[:rows])
        parts.append(symbol_frame(k, close, future, noise=rng.normal(0, 1, rows)))
    frame = pd.concat(parts, ignore_index=True).sort_values(["timestamp", "symbol"], ignore_index=True)
    relative = frame[TARGET] - frame.groupby("timestamp")[TARGET].transform("mean")
    return frame.assign(signal=relative + rng.normal(0, 0.03, len(frame)))


def relative_verdict(features: list[str], frame: pd.DataFrame) -> tuple[dict, dict]:
    spec = ForecastSpec(
        features, HORIZON, {"n_estimators": 60, "max_depth": 3}, threads=1, fee_pct=0.1, target="market_relative"
    )
    cv = cross_validate(MODEL_TYPES["xgboost"], spec, frame, folds=3, step_ms=HOUR)
    return cv, gate_verdict(cv, Policy())


def test_a_market_relative_model_is_gated_against_flat_and_market_neutral_persistence() -> None:
    cv, gate = relative_verdict(["signal", "noise"], relative_market())
    model, baselines = cv["pooled"]["model"], cv["pooled"]["baselines"]
    assert model["market_neutral"] is True and "market_neutral_persistence" in baselines
    assert gate["passed"] is True, gate["reason"]
    assert gate["figures"]["baselines"] == ["zero_return", "market_neutral_persistence"]
    assert "buy_and_hold" not in gate["figures"]
    assert "zero_return, market_neutral_persistence" in gate["reason"] and "market-neutral" in gate["reason"]
    assert gate["figures"]["market_neutral_persistence"]["interval_95"][0] > 0
    # Like with like matters: the hedged book earns less than the market's strong uptrend, so the
    # comparison with buy-and-hold (the directional models' gate) would have rejected a real edge.
    assert model["vs"]["buy_and_hold"]["sharpe_diff"] < 0


def test_a_market_relative_model_without_skill_is_rejected_naming_its_baselines() -> None:
    _, gate = relative_verdict(["noise"], relative_market(seed=8))
    assert gate["passed"] is False
    used = "fails the baseline gate after fees [baselines zero_return, market_neutral_persistence"
    assert gate["reason"].startswith(used)
    assert "vs market_neutral_persistence" in gate["reason"] and "vs buy_and_hold" not in gate["reason"]


def test_a_directional_model_is_still_gated_against_flat_and_buy_and_hold() -> None:
    gate = verdict(MeanForecaster, {})
    assert gate["figures"]["baselines"] == ["zero_return", "buy_and_hold"]
    assert "[baselines zero_return, buy_and_hold]" in gate["reason"]
