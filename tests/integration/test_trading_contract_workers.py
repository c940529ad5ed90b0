"""The trading engine's contract on the real stack: PostgreSQL, Redis and real Celery worker processes.

- A CRITICAL drift found by a real drift check (the beat's task, on a worker, over stored
  candles that drifted) halts trading: no sizing decision allows a trade until an operator
  resumes, and then one does.
- An outcome that names its decisions updates exactly those states and actions, once,
  applied by a worker; a repeat changes nothing.
- Regime detection as the beat's task on a worker: a regime change of the market index
  publishes `regime.changed`; with the policy's switch off nothing is reset; on, the CLM
  resets both agents (old tables archived) and publishes `clm.rl.reset`.

The API is the application itself, served in this process over httpx's WSGI transport to
the client library (the gunicorn side of the client is `tests/e2e/test_client_live.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import httpx
import numpy as np
import pandas as pd
import pytest
from quantum_trader_client import CLMClient, Conflict, MetaStrategyState, SizingState, TradeOutcome
from sqlalchemy import func, select

from app.api import create_app
from app.core.clock import Clock, use_clock, utcnow
from app.core.db.models import DriftEvent, Event, ModelRegistry, RetrainingJob, RLAppliedUpdate, RLQValue, RLVersion
from app.core.system import get_flag
from app.data_pipeline import CandleStore
from app.data_pipeline.dataset import DatasetSpec, build_dataset, load_dataset
from app.regime_detector.market import MARKET
from app.simulation.jobs import JobRunner
from app.simulation.shared_clock import ENV as CLOCK_FILE_ENV
from app.simulation.shared_clock import SharedSimulatedClock
from tests.conftest import API_TOKEN
from tests.services import celery_worker

pytestmark = pytest.mark.integration

EPOCH = datetime(1970, 1, 1)
META = MetaStrategyState(
    market_regime="TRENDING", volatility_level="LOW", liquidity_level="HIGH", recent_performance="GOOD"
)
SIZING = SizingState(
    market_regime="RANGING", signal_confidence=0.72, portfolio_exposure=0.1, recent_winrate=0.55, volatility=1.2
)


def _ms(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds() * 1000)


def _wait_for(what: str, condition: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {seconds:.0f} s", pytrace=False)
        time.sleep(0.2)


def _topics(container, topic: str) -> list[dict]:
    with container.session_factory() as session:
        return list(session.scalars(select(Event.payload).where(Event.topic == topic).order_by(Event.id)))


@pytest.fixture
def on_workers(pg_container) -> Iterator[CLMClient]:
    """Events published here go to the workers; the client calls the API built on the same container."""
    from workers.celery_app import celery_app, configure
    from workers.celery_dispatcher import CeleryDispatcher

    configure(pg_container.settings)
    pg_container.dispatcher = CeleryDispatcher(celery_app)
    pg_container.bus.scheduler = pg_container.dispatcher
    pg_container.policy_store.ensure_default()
    transport = httpx.WSGITransport(app=create_app(pg_container))
    with CLMClient("http://clm.test", API_TOKEN, transport=transport, retries=0, timeout_s=60) as client:
        yield client


# --------------------------------------------------------------------------- CRITICAL drift halts trading


def _drifted_candles(end: datetime, rows: int) -> pd.DataFrame:
    """5m candles up to `end` that climb 1 % a candle with little noise: nothing like the training market."""
    step = 300_000
    stamps = _ms(end) // step * step - step * np.arange(rows)[::-1]
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(0.01 + rng.normal(0, 0.0005, rows)))
    opened = np.concatenate([[close[0]], close[:-1]])
    return pd.DataFrame(
        {
            "timestamp": stamps,
            "open": opened,
            "high": np.maximum(opened, close) * (1 + np.abs(rng.normal(0, 0.03, rows))),
            "low": np.minimum(opened, close) * (1 - np.abs(rng.normal(0, 0.03, rows))),
            "close": close,
            "volume": rng.lognormal(12, 2, rows),
        }
    )


def _active_model_trained_on_the_synthetic_market(container) -> None:
    """An ACTIVE xgboost entry whose manifest names its training rows, as training writes it (the
    drift check builds its reference from them; no artifact is read), and its initial job."""
    start = datetime(2025, 1, 1)
    spec = DatasetSpec(symbols=("BTC/USDT",), start=start, end=start + timedelta(days=10), source="synthetic", seed=5)
    dataset_id = build_dataset(container, spec).dataset_id
    frame, manifest = load_dataset(container, dataset_id)
    train = {"start_ms": int(frame["timestamp"].min()), "end_ms": int(frame["timestamp"].max())}
    with container.session() as session:
        session.add(
            ModelRegistry(
                model_id="xgb-1", model_type="xgboost", version="1", status="ACTIVE", metrics={},
                manifest={"dataset_id": dataset_id, "feature_columns": manifest["feature_columns"],
                          "training_data_range": {"train": train}},
                created_at=utcnow(), file_path="models/xgboost/run-1/model.json",
            )
        )  # fmt: skip
        # Trained an hour ago: the drift's retraining is held by the cooldown (suppressed, recorded),
        # so the worker checks and halts without training a model here.
        session.add(
            RetrainingJob(
                job_id="initial-1", job_type="full", trigger_reason="initial", status="completed",
                started_at=utcnow() - timedelta(hours=1), completed_at=utcnow(), model_types=["xgboost"],
            )
        )  # fmt: skip


def test_critical_drift_from_a_drift_check_on_a_worker_halts_sizing_until_resumed(
    pg_container, on_workers, worker_env, tmp_path
) -> None:
    from tasks.drift import run_drift_check

    api = on_workers
    pg_container.policy_store.update(
        {
            "data": {"exchange": "synthetic", "symbols": ["BTC/USDT"], "timeframe": "5m"},
            "training": {"model_types": ["xgboost"]},
            "clm_config": {"drift_detection": {"lookback_days": 2}, "retraining_cooldown_hours": 6},
        },
        author="test",
    )
    _active_model_trained_on_the_synthetic_market(pg_container)
    CandleStore(pg_container).write("synthetic", "BTC/USDT", "5m", _drifted_candles(utcnow(), 2 * 288 + 400))
    assert api.sizing_decision(SIZING, balance_usd=10_000).allowed  # before: trading

    with celery_worker(worker_env, queues="default,cpu", log_path=tmp_path / "worker.log"):
        assert run_drift_check.delay().get(timeout=120) == {"models": ["xgboost"]}
        _wait_for("the halt after the CRITICAL drift", lambda: api.status().trading_halted["halted"])
        _wait_for("the drift check's reaction", lambda: bool(_topics(pg_container, "clm.retraining.suppressed")))

    with pg_container.session_factory() as session:
        severities = set(session.scalars(select(DriftEvent.severity).where(DriftEvent.drift_type == "feature")))
        halt = get_flag(session, "trading_halted")
    assert severities == {"critical"}
    assert halt is not None and halt.value["reason"] == "CRITICAL feature drift"
    assert _topics(pg_container, "clm.trading.halted") == [{"reason": "CRITICAL feature drift"}]

    for balance, open_positions in ((10_000, 0), (50_000, 1), (250, 0)):
        refused = api.sizing_decision(SIZING, balance_usd=balance, open_positions=open_positions)
        assert not refused.allowed and refused.size_usd == 0 and refused.trading_halted
        assert refused.halt_reason == "CRITICAL feature drift"
        assert refused.clamp_reasons[-1].startswith("trading_halted: CRITICAL feature drift")
    assert api.meta_decision(META).trading_halted
    with pytest.raises(Conflict):  # a refused decision opens no trade, so no outcome can apply it
        api.report_trade(
            TradeOutcome(trade_id="H-1", pnl_pct=1.0, duration_hours=1, sizing_decision_id=refused.decision_id)
        )

    assert api.resume_trading("checked by the operator").trading_halted["halted"] is False
    resumed = api.sizing_decision(SIZING, balance_usd=10_000)
    assert resumed.allowed and resumed.size_usd > 0 and not resumed.trading_halted


# --------------------------------------------------------------------------- an outcome applied once by a worker


def test_an_outcome_naming_decisions_is_applied_once_by_a_worker(
    pg_container, on_workers, worker_env, tmp_path
) -> None:
    api = on_workers
    other_meta = META.model_copy(update={"market_regime": "CHOPPY"})
    meta, sizing = api.meta_decision(META), api.sizing_decision(SIZING, balance_usd=10_000)
    unrelated = api.meta_decision(other_meta)  # decided, never applied: its state must stay untouched
    assert sizing.allowed and meta.state_key != unrelated.state_key
    outcome = TradeOutcome(
        trade_id="W-1", pnl_pct=2.5, duration_hours=3.0, max_drawdown_pct=0.5, hit_tp=True, winrate=0.6,
        meta_decision_id=meta.decision_id, sizing_decision_id=sizing.decision_id,
    )  # fmt: skip

    def updates() -> list[tuple[str, str, str]]:
        with pg_container.session_factory() as session:
            rows = session.scalars(select(RLAppliedUpdate).order_by(RLAppliedUpdate.rl_type)).all()
            return [(r.rl_type, r.state_key, r.action) for r in rows]

    def q_table() -> dict[tuple[str, str, str], tuple[float, int]]:
        with pg_container.session_factory() as session:
            return {
                (q.rl_type, q.state_key, q.action): (q.q_value, q.visits) for q in session.scalars(select(RLQValue))
            }

    with celery_worker(worker_env, queues="default", log_path=tmp_path / "worker.log"):
        accepted = api.report_trade(outcome)
        _wait_for("both agents' updates by the worker", lambda: len(updates()) == 2)
        applied = q_table()
        # A retry of the same trade is recognised; the same decisions under another trade are refused.
        assert api.report_trade(outcome).model_dump() == accepted.model_dump() | {"replayed": True}
        with pytest.raises(Conflict) as twice:
            api.report_trade(outcome.model_copy(update={"trade_id": "W-2"}))
        assert twice.value.details[0]["field"] == "body.meta_decision_id"
        pg_container.dispatcher.deliver_events()  # anything still pending goes to the worker now
        time.sleep(2.0)  # and a wrongly repeated update would show up

    assert updates() == [
        ("meta_strategy", meta.state_key, meta.strategy),
        ("position_sizing", sizing.state_key, sizing.action),
    ]
    assert set(applied) == {
        ("meta_strategy", meta.state_key, meta.strategy),
        ("position_sizing", sizing.state_key, sizing.action),
    }  # exactly the decided states and actions, nothing of the unrelated decision
    assert all(visits == 1 for _, visits in applied.values()) and all(q != 0 for q, _ in applied.values())
    assert q_table() == applied  # the repeat changed nothing
    with pg_container.session_factory() as session:
        closed = session.scalar(select(func.count()).select_from(Event).where(Event.topic == "execution.trade.closed"))
    assert closed == 1
    assert len(_topics(pg_container, "rl.meta.updated")) == 1 and len(_topics(pg_container, "rl.sizing.updated")) == 1


# --------------------------------------------------------------------------- regime detection on beat, on a worker

HOUR = timedelta(hours=1)
REGIME_START = datetime(2026, 1, 1)
SYMBOLS = ["BTC/USDT", "ETH/USDT"]


def _regime_market() -> dict[str, pd.DataFrame]:
    """1h candles: 400 quiet hours, 150 trending ones, then 250 quiet ones again, for both symbols."""
    rng = np.random.default_rng(7)
    frames = {}
    for i, symbol in enumerate(SYMBOLS):
        returns = np.concatenate(
            [rng.normal(0, 0.002, 400), rng.normal(0.003 + 0.001 * i, 0.001, 150), rng.normal(0, 0.002, 250)]
        )
        close = 100 * np.exp(np.cumsum(returns))
        frames[symbol] = pd.DataFrame(
            {
                "timestamp": _ms(REGIME_START) + 3_600_000 * np.arange(len(close)),
                "open": close, "high": close * 1.001, "low": close * 0.999, "close": close,
                "volume": np.full(len(close), 10.0),
            }
        )  # fmt: skip
    return frames


def test_regime_detection_on_beat_resets_the_agents_only_when_the_policy_says(
    pg_container, on_workers, worker_env, tmp_path
) -> None:
    """The simulated beat sends the policy's regime-detection job through the broker each simulated
    hour; the worker reads the candle store and the simulated clock (a shared file), and the CLM's
    reaction to `regime.changed` runs on the worker too (event delivery)."""
    pg_container.policy_store.update(
        {
            "data": {"exchange": "binance", "symbols": SYMBOLS, "timeframe": "1h"},
            "clm_config": {"rl_maintenance": {"reset_on_regime_change": False}},
        },
        author="test",
    )
    frames = _regime_market()
    clock = SharedSimulatedClock(REGIME_START, tmp_path / "clock")
    use_clock(clock)
    runner = JobRunner(pg_container, wait_timeout_s=120)
    runner.beat.only = {"regime-detection"}
    store = CandleStore(pg_container)

    def replay(upto: int) -> None:
        """The candles of hours [0, upto) are in the store; the clock at the last one's close; the beat ticks."""
        for symbol, frame in frames.items():
            store.write("binance", symbol, "1h", frame.iloc[:upto], on_conflict="replace")
        clock.set(REGIME_START + upto * HOUR)
        runner.tick(clock.now())

    def market_changes() -> list[dict]:
        return [p for p in _topics(pg_container, "regime.changed") if p["symbol"] == MARKET]

    try:
        with celery_worker(worker_env | {CLOCK_FILE_ENV: str(tmp_path / "clock")}, log_path=tmp_path / "w.log"):
            replay(399)  # arms the beat (nothing runs at start-up)
            for upto in range(400, 551, 25):  # quiet -> trending, the switch off (a tick every 25 simulated hours)
                replay(upto)
            off = market_changes()
            assert any(p["new"] == "TRENDING" and p["at"] > _ms(REGIME_START + 400 * HOUR) for p in off), off
            assert _topics(pg_container, "clm.rl.reset") == []
            with pg_container.session_factory() as session:
                assert session.scalars(select(RLVersion)).all() == []  # nothing reset, nothing archived

            pg_container.policy_store.update(
                {"clm_config": {"rl_maintenance": {"reset_on_regime_change": True}}}, author="test"
            )
            for upto in range(575, 801, 25):  # trending -> quiet again, the switch on
                replay(upto)
    finally:
        use_clock(Clock())
    assert runner.runs["regime-detection"] == len(range(400, 551, 25)) + len(range(575, 801, 25))
    on = market_changes()[len(off) :]
    assert on and on[-1]["old"] == "TRENDING", on
    resets = _topics(pg_container, "clm.rl.reset")
    assert len(resets) == len(on)  # one per change of the market index; the symbols' own changes reset nothing
    assert resets[0]["reason"] == f"regime_change:{on[0]['old']}->{on[0]['new']}"
    assert set(resets[0]["agents"]) == {"meta", "sizing"}
    assert {t for t in ("rl.meta.reset", "rl.sizing.reset") if _topics(pg_container, t)} == {
        "rl.meta.reset",
        "rl.sizing.reset",
    }
    with pg_container.session_factory() as session:
        archived = session.scalars(select(RLVersion).where(RLVersion.archived_at.is_not(None))).all()
    assert {v.rl_type for v in archived} == {"meta_strategy", "position_sizing"}
    status = on_workers.status()
    assert status.regimes[MARKET]["regime"] == on[-1]["new"] and set(status.regimes) == {*SYMBOLS, MARKET}
