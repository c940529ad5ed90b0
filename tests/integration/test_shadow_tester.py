"""The shadow tester on the real PostgreSQL: record, close, evaluate, promote or reject."""

from __future__ import annotations

import itertools
import math
from datetime import datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, insert, select, update

from app.core.clock import utcnow
from app.core.db.models import Candle, Event, ShadowTestResult
from app.core.db.models import ModelRegistry as ModelRow
from app.core.topics import TradeClosed
from app.model_registry import ModelRegistry
from app.shadow_tester import InvalidPredictionError, ShadowTester
from tests.unit.test_shadow_stats import evaluate_blocked, simulate

pytestmark = pytest.mark.integration

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
_versions = itertools.count(1)


def add_model(container, model_id: str, status: str, model_type: str = "xgboost") -> None:
    with container.session() as session:
        session.add(
            ModelRow(
                model_id=model_id,
                model_type=model_type,
                version=str(next(_versions)),
                status=status,
                metrics={},
                created_at=utcnow(),
                file_path=f"models/{model_id}/model.json",
            )
        )


def topics(container) -> list[str]:
    with container.session() as session:
        return list(session.scalars(select(Event.topic).order_by(Event.id)))


def test_specification_simulation_promotes_through_the_registry(pg_container) -> None:
    add_model(pg_container, "active_1", "ACTIVE")
    add_model(pg_container, "shadow_1", "SHADOW")
    tester = ShadowTester(pg_container)
    # The unit tests' simulation (seed 1), whose test power over 100 seeds is checked there.
    active_dirs, shadow_dirs, realized_returns = simulate(1, 0.55, 0.62)
    rng = np.random.default_rng(1)
    for hour, (active_dir, shadow_dir, realized) in enumerate(
        zip(active_dirs, shadow_dirs, realized_returns, strict=True)
    ):
        active_pred = {"action": "BUY" if active_dir > 0 else "SELL", "confidence": float(rng.uniform(0.5, 1))}
        shadow_pred = {"action": "BUY" if shadow_dir > 0 else "SELL", "confidence": float(rng.uniform(0.5, 1))}
        test_id = tester.record_shadow_prediction(
            "shadow_1", "active_1", str(rng.choice(SYMBOLS)), active_pred, shadow_pred,
            timestamp=datetime(2024, 1, 1) + timedelta(hours=hour),  # asked hourly
        )  # fmt: skip
        # The trade follows the active call; its PnL is the market move in that direction.
        outcome = {"pnl_pct": active_dir * realized * 100, "side": active_pred["action"], "duration_hours": 1.0}
        assert tester.record_outcome(test_id, outcome) is True
    assert tester.record_outcome(test_id, outcome) is False  # already closed

    evaluation = tester.evaluate_shadow_model("shadow_1")
    assert evaluation.recommendation == "PROMOTE", evaluation.reasons
    assert evaluation.total_samples == 1000
    assert evaluation.active_model_id == "active_1"
    # Read back through COPY BINARY: the same numbers as the pure evaluation of the arrays, with the
    # block-robust test over the policy's 2-hour blocks.
    pure = evaluate_blocked(active_dirs, shadow_dirs, realized_returns)
    assert evaluation.test_blocks == 500
    assert evaluation.p_value_better == pytest.approx(pure.p_value_better, rel=1e-9)
    assert evaluation.shadow_metrics.max_drawdown_pct == pytest.approx(pure.shadow_metrics.max_drawdown_pct)
    assert 0.5 <= evaluation.shadow_metrics.avg_confidence <= 1.0
    assert tester.promote_if_ready("shadow_1") is True

    registry = ModelRegistry(pg_container)
    assert registry.get_model("shadow_1").status == "ACTIVE"
    assert registry.get_model("active_1").status == "RETIRED"
    seen = topics(pg_container)
    assert {"shadow.promotion.recommended", "model.promoted", "shadow.promoted"} <= set(seen)
    assert seen.index("shadow.promotion.recommended") < seen.index("shadow.promoted")
    assert tester.promote_if_ready("shadow_1") is False  # no longer a shadow: nothing happens


def test_worse_shadow_is_rejected(pg_container) -> None:
    add_model(pg_container, "active_1", "ACTIVE")
    add_model(pg_container, "shadow_2", "SHADOW")
    tester = ShadowTester(pg_container)
    rng = np.random.default_rng(5)
    realized = rng.normal(0.0, 0.015, 1200)
    items = [
        {
            "shadow_model_id": "shadow_2",
            "active_model_id": "active_1",
            "symbol": "BTCUSDT",
            "active_pred": {"direction": int(np.sign(r)) if rng.random() < 0.58 else -int(np.sign(r))},
            "shadow_pred": {"direction": int(np.sign(r)) if rng.random() < 0.48 else -int(np.sign(r))},
            "timestamp": datetime(2024, 1, 1) + timedelta(hours=k),
        }
        for k, r in enumerate(realized)
    ]
    assert tester.record_shadow_predictions(items) == 1200
    with pg_container.session() as session:
        ids = list(session.scalars(select(ShadowTestResult.id).order_by(ShadowTestResult.id)))
    with pg_container.session() as session:  # closed at once: record_outcome is exercised above
        session.execute(
            update(ShadowTestResult),
            [{"id": i, "realized_return": float(r), "actual_outcome": {}} for i, r in zip(ids, realized, strict=True)],
        )
    assert tester.evaluate_shadow_model("shadow_2").recommendation == "REJECT"
    assert tester.promote_if_ready("shadow_2") is False
    assert ModelRegistry(pg_container).get_model("shadow_2").status == "REJECTED"
    assert ModelRegistry(pg_container).get_model("active_1").status == "ACTIVE"


def test_batch_with_a_bad_item_writes_nothing_and_names_it(pg_container) -> None:
    add_model(pg_container, "active_1", "ACTIVE")
    add_model(pg_container, "shadow_1", "SHADOW")
    good = {"shadow_model_id": "shadow_1", "active_model_id": "active_1", "symbol": "BTCUSDT"}
    items = [
        good | {"active_pred": {"direction": 1}, "shadow_pred": {"direction": -1, "confidence": 0.7}},
        good | {"active_pred": {"direction": 1}, "shadow_pred": {"direction": 1, "confidence": 1.7}},
    ]
    with pytest.raises(InvalidPredictionError, match=r"predictions\[1\]\.shadow_pred\.confidence"):
        ShadowTester(pg_container).record_shadow_predictions(items)
    with pytest.raises(InvalidPredictionError, match="direction"):
        ShadowTester(pg_container).record_shadow_prediction("shadow_1", "active_1", "BTCUSDT", {"direction": 2}, {})
    with pg_container.session() as session:
        assert session.scalar(select(func.count()).select_from(ShadowTestResult)) == 0


def test_bad_item_late_in_a_streamed_batch_writes_nothing(pg_container) -> None:
    """COPY streams while rows are encoded: rows already sent are rolled back with the batch."""
    add_model(pg_container, "active_1", "ACTIVE")
    add_model(pg_container, "shadow_1", "SHADOW")
    pred = {"direction": 1, "confidence": 0.6, "predicted_return": 0.001}
    good = {"shadow_model_id": "shadow_1", "active_model_id": "active_1", "symbol": "BTCUSDT"}
    items = [good | {"active_pred": pred, "shadow_pred": pred} for _ in range(6000)]
    items[5000] = good | {"active_pred": pred, "shadow_pred": {"direction": "up"}}
    with pytest.raises(InvalidPredictionError, match=r"predictions\[5000\]\.shadow_pred\.direction"):
        ShadowTester(pg_container).record_shadow_predictions(items)
    with pg_container.session() as session:
        assert session.scalar(select(func.count()).select_from(ShadowTestResult)) == 0
    del items[5000]
    assert ShadowTester(pg_container).record_shadow_predictions(iter(items)) == 5999  # any iterable
    with pg_container.session() as session:
        assert session.scalar(select(func.count()).select_from(ShadowTestResult)) == 5999


def test_batch_naming_an_unknown_model_writes_nothing(pg_container) -> None:
    add_model(pg_container, "active_1", "ACTIVE")
    add_model(pg_container, "shadow_1", "SHADOW")
    pred = {"direction": 1, "confidence": 0.6}
    good = {"shadow_model_id": "shadow_1", "active_model_id": "active_1", "symbol": "BTCUSDT"}
    items = [good | {"active_pred": pred, "shadow_pred": pred}] * 3 + [
        good | {"shadow_model_id": "shadow_9", "active_pred": pred, "shadow_pred": pred}
    ]
    with pytest.raises(InvalidPredictionError, match=r"unknown model ids \['shadow_9'\]"):
        ShadowTester(pg_container).record_shadow_predictions(items)
    with pytest.raises(InvalidPredictionError, match=r"unknown model ids \['active_9'\]"):
        ShadowTester(pg_container).record_shadow_prediction("shadow_1", "active_9", "BTCUSDT", pred, pred)
    with pg_container.session() as session:
        assert session.scalar(select(func.count()).select_from(ShadowTestResult)) == 0


def test_batch_documents_keep_their_values_nan_as_null(pg_container) -> None:
    """The COPY path encodes the prediction documents itself: numbers, numpy scalars, NaN, nesting."""
    add_model(pg_container, "active_1", "ACTIVE")
    add_model(pg_container, "shadow_1", "SHADOW")
    active = {"direction": 1, "confidence": 0.6, "predicted_return": np.float32(0.25), "note": 'say "hi",\n ok'}
    shadow = {"action": "SELL", "predicted_return": float("nan"), "extra": {"k": [1, 2]}}
    item = {"shadow_model_id": "shadow_1", "active_model_id": "active_1", "symbol": "BTCUSDT"}
    assert ShadowTester(pg_container).record_shadow_predictions([item | {"active_pred": active, "shadow_pred": shadow}])
    with pg_container.session() as session:
        row = session.scalars(select(ShadowTestResult)).one()
    assert row.active_prediction == {
        "direction": 1,
        "confidence": 0.6,
        "predicted_return": 0.25,
        "note": 'say "hi",\n ok',
    }
    assert row.shadow_prediction == {"action": "SELL", "predicted_return": None, "extra": {"k": [1, 2]}}
    assert (row.active_direction, row.shadow_direction, row.shadow_confidence) == (1, -1, None)


def test_closed_trades_close_their_pairs_once(pg_container) -> None:
    add_model(pg_container, "active_1", "ACTIVE")
    add_model(pg_container, "shadow_1", "SHADOW")
    tester = ShadowTester(pg_container)
    opened = utcnow() - timedelta(hours=2)
    named = tester.record_shadow_prediction(
        "shadow_1", "active_1", "ETHUSDT", {"direction": -1}, {"direction": 1}, timestamp=opened
    )
    by_time = tester.record_shadow_prediction(
        "shadow_1", "active_1", "BTCUSDT", {"direction": 1}, {"direction": 1}, timestamp=opened
    )
    with pg_container.session() as session:
        trade = {"trade_id": "t-1", "symbol": "ETHUSDT", "pnl_pct": 2.0, "duration_hours": 1.5}
        pg_container.bus.publish(session, TradeClosed(**trade, shadow_test_id=named))
        opened_iso = (opened + timedelta(minutes=1)).isoformat()
        trade2 = {"trade_id": "t-2", "symbol": "BTCUSDT", "pnl_pct": -1.0, "opened_at": opened_iso}
        pg_container.bus.publish(session, TradeClosed(**trade2, duration_hours=0.0))
    pg_container.bus.deliver_pending()
    with pg_container.session() as session:
        rows = {r.id: r for r in session.scalars(select(ShadowTestResult))}
    # A short that made 2 % means the market fell 2 %.
    assert rows[named].realized_return == pytest.approx(-0.02) and rows[named].trade_id == "t-1"
    assert rows[by_time].realized_return == pytest.approx(-0.01) and rows[by_time].trade_id == "t-2"
    # Redelivered trade: nothing changes.
    assert tester.close_from_trade(trade | {"shadow_test_id": named, "pnl_pct": 9.0}) == 0


def test_open_pairs_are_resolved_from_the_candles(pg_container) -> None:
    add_model(pg_container, "active_1", "ACTIVE")
    add_model(pg_container, "shadow_1", "SHADOW")
    tester = ShadowTester(pg_container)
    policy = pg_container.policy_store.get()
    tf = timedelta(minutes=5)
    start = datetime(2026, 1, 1)
    closes = 100.0 * np.exp(np.cumsum(np.random.default_rng(2).normal(0, 0.002, 60)))
    epoch = datetime(1970, 1, 1)
    candles = [
        {
            "exchange": policy.data.exchange,
            "symbol": "BTCUSDT",
            "timeframe": policy.data.timeframe,
            "open_time": int((start + i * tf - epoch) / timedelta(milliseconds=1)),
            "open": c,
            "high": c,
            "low": c,
            "close": c,
            "volume": 1.0,
        }
        for i, c in enumerate(closes.tolist())
    ]
    with pg_container.session() as session:
        session.execute(insert(Candle), candles)
    # A prediction made at the close of candle 10 (its open + 5 min), horizon 12 candles.
    made_at = start + 11 * tf + timedelta(seconds=30)
    resolvable = tester.record_shadow_prediction(
        "shadow_1", "active_1", "BTCUSDT", {"direction": 1}, {"direction": -1}, timestamp=made_at
    )
    no_candles = tester.record_shadow_prediction(
        "shadow_1", "active_1", "SOLUSDT", {"direction": 1}, {"direction": -1}, timestamp=made_at
    )
    not_yet = tester.record_shadow_prediction(
        "shadow_1", "active_1", "BTCUSDT", {"direction": 1}, {"direction": -1}, timestamp=start + 50 * tf
    )
    report = tester.resolve_outcomes(now=made_at + 13 * tf)
    assert report == {"resolved": 1, "expired": 0, "pending": 1}
    with pg_container.session() as session:
        rows = {r.id: r for r in session.scalars(select(ShadowTestResult))}
    assert rows[resolvable].realized_return == pytest.approx(math.log(closes[22] / closes[10]))
    assert rows[resolvable].actual_outcome["source"] == "candles"
    assert rows[no_candles].actual_outcome is None and rows[not_yet].actual_outcome is None
    # Days later, the pair no candle can close is expired and never counts.
    report = tester.resolve_outcomes(now=made_at + timedelta(days=4))
    with pg_container.session() as session:
        expired = session.get(ShadowTestResult, no_candles)
        assert expired.actual_outcome["source"] == "expired" and expired.realized_return is None
    assert tester.evaluate_shadow_model("shadow_1", min_samples=1).total_samples == 1


def test_a_new_shadow_model_starts_its_test(pg_container) -> None:
    registry = ModelRegistry(pg_container)
    first = registry.register_model({"model_type": "lightgbm", "file_path": "models/a.txt", "sha256": "0" * 64})
    second = registry.register_model({"model_type": "lightgbm", "file_path": "models/b.txt", "sha256": "1" * 64})
    pg_container.bus.deliver_pending()
    with pg_container.session() as session:
        started = session.scalars(select(Event).where(Event.topic == "shadow.testing.started")).all()
    assert [e.payload["shadow_model_id"] for e in started] == [second]
    assert started[0].payload["active_model_id"] == first


@pytest.mark.parametrize("backend", ["pg_container", "sqlite_container"])
def test_the_evaluation_reads_the_count_and_the_first_pairs_in_time_order(backend, request) -> None:
    from app.shadow_tester.reads import closed_pairs

    container = request.getfixturevalue(backend)
    add_model(container, "active_r", "ACTIVE")
    add_model(container, "shadow_r", "SHADOW")
    start = datetime(2024, 1, 1)
    rng = np.random.default_rng(3)
    minutes = rng.permutation(40) // 2  # written out of time order, two pairs per timestamp
    rows = []
    for n, minute in enumerate(minutes):
        rows.append(
            dict(
                shadow_model_id="shadow_r", active_model_id="active_r", symbol="BTCUSDT",
                timestamp=start + timedelta(minutes=int(minute)), active_prediction={}, shadow_prediction={},
                active_direction=int(rng.choice([-1, 0, 1])), shadow_direction=int(rng.choice([-1, 1])),
                active_confidence=float(n), shadow_confidence=None, created_at=utcnow(),
                realized_return=None if n % 5 == 4 else float(rng.normal(0, 0.01)),  # every fifth still open
            )
        )  # fmt: skip
    with container.session() as session:
        session.execute(insert(ShadowTestResult), rows)
    with container.session() as session:
        expected = session.execute(
            select(ShadowTestResult.active_confidence, ShadowTestResult.realized_return)
            .where(ShadowTestResult.shadow_model_id == "shadow_r", ShadowTestResult.realized_return.is_not(None))
            .order_by(ShadowTestResult.timestamp, ShadowTestResult.id)
        ).all()
    everything = closed_pairs(container.engine, "shadow_r")
    asked: list[int] = []
    first = closed_pairs(container.engine, "shadow_r", lambda total: asked.append(total) or 7)
    assert everything.total == first.total == len(expected) == 32 and asked == [32]
    assert everything.read == 32 and first.read == 7
    assert everything.columns["active_confidence"].tolist() == [row[0] for row in expected]
    assert first.columns["realized_return"].tolist() == [row[1] for row in expected[:7]]
    assert first.columns["active_confidence"].tolist() == [row[0] for row in expected[:7]]
    assert np.isnan(first.columns["shadow_confidence"]).all()
    with pytest.raises(ValueError, match="first 33 of 32"):
        closed_pairs(container.engine, "shadow_r", lambda total: total + 1)
    # The tester asks for what its looks need: with min_samples 10 (looks 10, 20 ...), 20 of 32.
    result = ShadowTester(container).evaluate_shadow_model("shadow_r", min_samples=10)
    assert (result.total_samples, result.decision_samples, result.next_look_samples) == (32, 20, 40)
    assert result.active_model_id == "active_r"


@pytest.mark.parametrize("backend", ["pg_container", "sqlite_container"])
def test_incremental_evaluation_reads_only_new_pairs_and_decides_as_the_full_read(backend, request) -> None:
    from app.shadow_tester.incremental import running_stats
    from app.shadow_tester.stats import Thresholds, round_trip_fee

    container = request.getfixturevalue(backend)
    add_model(container, "active_i", "ACTIVE")
    add_model(container, "shadow_i", "SHADOW")
    tester = ShadowTester(container)
    fee = round_trip_fee(container.policy_store.get().labels.fee_pct)
    thresholds = Thresholds(min_samples=1000, max_samples=8000)
    active_dirs, shadow_dirs, realized = simulate(5, 0.55, 0.6, n=3000)
    start = datetime(2024, 1, 1)
    rng = np.random.default_rng(5)
    rows = [
        dict(
            shadow_model_id="shadow_i", active_model_id="active_i", symbol="BTCUSDT",
            timestamp=start + timedelta(hours=i // 2), active_prediction={}, shadow_prediction={},
            active_direction=int(active_dirs[i]), shadow_direction=int(shadow_dirs[i]),
            active_confidence=float(rng.uniform(0.5, 1)), shadow_confidence=None if i % 7 == 0 else 0.7,
            created_at=utcnow(),
        )
        for i in range(3000)
    ]  # fmt: skip
    with container.session() as session:
        session.execute(insert(ShadowTestResult), rows)
        ids = list(session.scalars(select(ShadowTestResult.id).order_by(ShadowTestResult.id)))

    def close(indices) -> None:
        with container.session() as session:
            session.execute(
                update(ShadowTestResult),
                [{"id": ids[i], "realized_return": float(realized[i])} for i in indices],
            )

    def both(min_samples: int):
        incremental = tester.evaluate_shadow_model("shadow_i", min_samples)
        full = tester.evaluate_shadow_model("shadow_i", min_samples, incremental=False)
        assert incremental.recommendation == full.recommendation and incremental.reasons == full.reasons
        assert (incremental.total_samples, incremental.decision_samples) == (full.total_samples, full.decision_samples)
        assert incremental.active_metrics.trades == full.active_metrics.trades
        assert incremental.shadow_metrics.max_drawdown_pct == full.shadow_metrics.max_drawdown_pct
        for a, b in (
            (incremental.active_metrics, full.active_metrics),
            (incremental.shadow_metrics, full.shadow_metrics),
        ):
            assert a.avg_pnl == pytest.approx(b.avg_pnl, rel=1e-12) and a.sharpe == pytest.approx(b.sharpe, rel=1e-12)
            assert a.avg_confidence == pytest.approx(b.avg_confidence, rel=1e-12, nan_ok=True)
        assert incremental.p_value_better == pytest.approx(full.p_value_better, rel=1e-9)
        return incremental

    close(range(0, 600))
    first = running_stats(container.engine, "shadow_i", thresholds, fee)
    assert (first.full, first.pairs_read, first.total) == (True, 600, 600)  # no state yet: a full read
    close(range(600, 700))
    step = running_stats(container.engine, "shadow_i", thresholds, fee)
    assert (step.full, step.pairs_read, step.total) == (False, 100, 700)  # only the 100 new pairs
    again = running_stats(container.engine, "shadow_i", thresholds, fee)
    assert (again.full, again.pairs_read) == (False, 0)
    assert again.running == step.running
    close(range(700, 1500))
    # At 1500 closed pairs the decision is on the first 1000 (the first look): 300 more are read.
    at_look = running_stats(container.engine, "shadow_i", thresholds, fee)
    assert (at_look.full, at_look.pairs_read, at_look.running.pairs, at_look.total) == (False, 300, 1000, 1500)
    # A pair closed behind the kept position (a late trade) changes the first 1000: read anew.
    with container.session() as session:
        session.execute(update(ShadowTestResult).where(ShadowTestResult.id == ids[1]).values(realized_return=None))
    recomputed = running_stats(container.engine, "shadow_i", thresholds, fee)
    assert recomputed.full and recomputed.running.pairs == 1000 and recomputed.total == 1499
    close([1])
    assert running_stats(container.engine, "shadow_i", thresholds, fee).full
    # Another fee: the kept statistics do not hold.
    assert running_stats(container.engine, "shadow_i", thresholds, fee * 2).full
    # Through the tester, decisions at each stage equal the full read's.
    for upto, min_samples in ((1600, 1000), (2400, 1000), (3000, 1000), (3000, 500), (3000, 2000)):
        close(range(1500, upto))
        result = both(min_samples)
        assert result.total_samples == upto
