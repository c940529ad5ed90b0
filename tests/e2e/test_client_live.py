"""The client library against the API under gunicorn: every method, a retried 503, a timeout."""

from __future__ import annotations

import pytest
from quantum_trader_client import (
    Candle,
    CLMClient,
    Conflict,
    MetaStrategyState,
    RetrainingRequest,
    SizingState,
    TimedOut,
    TradeOutcome,
    Unavailable,
    ValidationFailed,
)

from app.clm.manager import ContinuousLearningManager
from tests.api_fixtures import synthetic_candles, train_naive
from tests.conftest import API_TOKEN
from tests.e2e.processes import api_server

pytestmark = pytest.mark.e2e

META = MetaStrategyState(
    market_regime="VOLATILE", volatility_level="HIGH", liquidity_level="LOW", recent_performance="POOR"
)
SIZING = SizingState(
    market_regime="VOLATILE", signal_confidence=0.9, portfolio_exposure=0.0, recent_winrate=0.6, volatility=2.5
)


def test_every_method_against_gunicorn(pg_container, worker_env, tmp_path) -> None:
    pg_container.policy_store.ensure_default()
    train_naive(pg_container)
    env = worker_env | {"CLM_API_TOKEN": API_TOKEN}
    with api_server(env, tmp_path / "api.log") as base, CLMClient(base, API_TOKEN, timeout_s=30) as clm:
        prediction = clm.predict("BTC/USDT", "naive", [Candle(**c) for c in synthetic_candles()])
        assert prediction.model_type == "naive" and prediction.trading_halted is False
        meta, sizing = clm.meta_decision(META), clm.sizing_decision(SIZING, balance_usd=20_000, open_positions=1)
        assert meta.state_key == "VOLATILE_HIGH_LOW_POOR" and sizing.allowed
        outcome = TradeOutcome(
            trade_id="LIVE-1", pnl_pct=-1.2, duration_hours=5, prediction_id=prediction.prediction_id,
            meta_decision_id=meta.decision_id, sizing_decision_id=sizing.decision_id,
        )  # fmt: skip
        first = clm.report_trade(outcome)
        assert clm.report_trade(outcome).event_id == first.event_id  # a retry is recognised
        with pytest.raises(Conflict):
            clm.report_trade(outcome.model_copy(update={"trade_id": "LIVE-2"}))
        with pytest.raises(ValidationFailed) as bad:
            clm.sizing_decision(SIZING, balance_usd=-3)
        assert bad.value.details[0]["field"] == "body.balance_usd"

        ContinuousLearningManager(pg_container).halt_trading("CRITICAL feature drift (test)")
        assert clm.status().trading_halted["halted"] is True
        refused = clm.sizing_decision(SIZING, balance_usd=20_000)
        assert not refused.allowed and refused.size_usd == 0 and refused.halt_reason == "CRITICAL feature drift (test)"
        assert clm.predict("BTC/USDT", "naive", [Candle(**c) for c in synthetic_candles()]).trading_halted
        assert clm.resume_trading("checked by the test").trading_halted["halted"] is False
        assert clm.sizing_decision(SIZING, balance_usd=20_000).allowed

        job = clm.trigger_retraining(RetrainingRequest(kind="partial", model_types=["naive"], reason="client test"))
        assert clm.job(job.job_id).trigger_reason == "client test"

        # The status takes tens of milliseconds to assemble: a 2 ms timeout never hangs, it raises.
        hasty = CLMClient(base, API_TOKEN, timeout_s=0.002, retries=1, backoff_s=0.01)
        with hasty, pytest.raises(TimedOut) as timed_out:
            hasty.status()
        assert timed_out.value.attempts == 2

    # A server whose database is unreachable answers 503 (Retry-After): reads are retried, then one typed error.
    down = env | {"DATABASE_URL": "postgresql+psycopg2://postgres@127.0.0.1:1/nowhere"}
    with api_server(down, tmp_path / "down.log") as base:
        patient = CLMClient(base, API_TOKEN, retries=2, backoff_s=0.05, max_backoff_s=0.2)
        with patient, pytest.raises(Unavailable) as unavailable:
            patient.status()
        assert unavailable.value.status == 503 and unavailable.value.attempts == 3
        assert "database unavailable" in unavailable.value.body["error"]
