"""RL updates from several real worker processes on PostgreSQL: none lost, none applied twice."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import func, select

from app.core.db.models import Event, RLAppliedUpdate, RLVersion
from app.core.topics import TradeClosed
from app.rl.meta_space import MetaStrategyState
from app.rl.meta_strategy import RLMetaStrategy
from app.rl.position_sizing import RLPositionSizing
from app.rl.rewards import meta_strategy_reward, position_sizing_reward
from app.rl.sizing_space import SizingState
from tests.services import celery_worker

pytestmark = pytest.mark.integration

TRADES = 60
INTERVAL = 20  # snapshot every 20 trades
META_STATES = [
    MetaStrategyState("TRENDING", "HIGH", "MEDIUM", "GOOD"),
    MetaStrategyState("CHOPPY", "LOW", "LOW", "POOR"),
]
SIZING = SizingState("TRENDING", 0.9, 0.3, 0.55, 2.5)
SIZING_ACTION = "size-1.0_lev-3_tp-balanced_sl-medium"


def _payload(n: int) -> dict:
    # Every trade has the same outcome, so the final Q is independent of the order in which
    # the processes apply them: Q_n = r * (1 - (1 - lr)^n). A lost update changes n.
    return {
        "trade_id": f"trade-{n}",
        "pnl_pct": 1.5,
        "duration_hours": 4.0,
        "max_drawdown_pct": 0.5,
        "hit_tp": True,
        "winrate": 0.6,
        "meta_state": META_STATES[n % 2].to_dict(),
        "meta_action": "trend_follow",
        "sizing_state": SIZING.to_dict(),
        "sizing_action": SIZING_ACTION,
    }


def test_concurrent_and_redelivered_updates_are_applied_exactly_once(pg_container, worker_env, tmp_path) -> None:
    from tasks.rl import apply_trade_outcome, run_rl_maintenance
    from workers.celery_app import configure

    configure(pg_container.settings)
    pg_container.policy_store.update({"clm_config": {"rl_maintenance": {"snapshot_interval_trades": INTERVAL}}})
    sends = list(range(TRADES)) + random.Random(5).sample(range(TRADES), 25)  # 25 trades arrive twice
    random.Random(6).shuffle(sends)
    log = tmp_path / "worker.log"
    with celery_worker(worker_env, queues="default", pool="prefork", concurrency=3, log_path=log):
        pending = [apply_trade_outcome.delay(_payload(n)) for n in sends]
        results = [r.get(timeout=120) for r in pending]
        maintenance = run_rl_maintenance.delay().get(timeout=60)
    # every trade was covered by a snapshot already, and nothing is stale: nothing to do
    assert maintenance["meta_strategy"] == {
        "rl_type": "meta_strategy",
        "saved_version": None,
        "pruned_states": 0,
        "live": 4,
    }
    assert len({r["worker_pid"] for r in results}) >= 2, "updates must come from several processes"
    applied = [r for r in results if r["meta_strategy"] is not None]
    assert len(applied) == TRADES  # each trade applied once; its second arrival changed nothing

    meta, sizing = RLMetaStrategy(pg_container), RLPositionSizing(pg_container)
    for agent in (meta, sizing):
        status = agent.status()
        assert status["total_updates"] == TRADES, status
        assert status["visits"] == TRADES
        assert status["version"] == TRADES // INTERVAL + 1
        assert [v["version"] for v in status["versions"]] == [1, 2, 3]
    lr = pg_container.policy_store.get().rl.learning_rate
    meta_reward = meta_strategy_reward(1.5, 4.0, 0.5, 0.6)
    sizing_reward = position_sizing_reward(1.5, 4.0, 0.5, True, False)
    meta_table = meta.q_table()
    for state in META_STATES:
        assert meta_table[state.key]["trend_follow"] == pytest.approx(meta_reward * (1 - (1 - lr) ** (TRADES // 2)))
    assert sizing.q_table()[SIZING.key][SIZING_ACTION] == pytest.approx(sizing_reward * (1 - (1 - lr) ** TRADES))
    with pg_container.session_factory() as session:
        snapshots = session.scalars(select(RLVersion).order_by(RLVersion.rl_type, RLVersion.version)).all()
        assert [s.total_updates for s in snapshots] == [20, 40, 60] * 2
        assert session.scalar(select(func.count()).select_from(RLAppliedUpdate)) == 2 * TRADES
        updated = session.scalar(select(func.count()).where(Event.topic == "rl.meta.updated"))
        assert updated == TRADES
    # the third snapshot holds the table after all 60 trades, in the specification's format
    assert meta.q_table(3) == meta_table


def test_reset_on_postgresql_archives_and_the_old_version_stays_loadable(pg_container) -> None:
    meta = RLMetaStrategy(pg_container)
    for n in range(6):
        meta.update_q_table(META_STATES[0], "breakout", float(n), trade_id=f"r{n}")
    before = meta.q_table()
    saved = meta.save_version()
    meta.update_q_table(META_STATES[1], "defensive", 2.0, trade_id="r-after")
    result = meta.reset_on_regime_shift(reason="TRENDING_LOW_VOL -> CHOPPY_HIGH_VOL")
    assert result is not None and (saved, result.old_version, result.new_version) == (1, 2, 3)
    status = meta.status()
    assert (status["version"], status["states"], status["total_updates"], status["epsilon"]) == (3, 0, 0, 0.5)
    assert [(v["version"], v["archived"]) for v in status["versions"]] == [(1, False), (2, True)]
    assert set(meta.q_table(2)) == {META_STATES[0].key, META_STATES[1].key}
    assert meta.load_version(1) == 3 and meta.q_table() == before
    # a trade redelivered after the reset is still recognised
    assert meta.update_q_table(META_STATES[0], "breakout", 9.0, trade_id="r0") is None
    with pg_container.session_factory() as session:
        topics = session.scalars(select(Event.topic).where(Event.topic == "rl.meta.reset")).all()
    assert topics == ["rl.meta.reset"]


def test_trade_closed_events_reach_both_agents_through_a_worker(pg_container, worker_env, tmp_path) -> None:
    import time

    from workers.celery_app import celery_app, configure
    from workers.celery_dispatcher import CeleryDispatcher

    configure(pg_container.settings)
    pg_container.bus.scheduler = CeleryDispatcher(celery_app)
    meta, sizing = RLMetaStrategy(pg_container), RLPositionSizing(pg_container)
    with celery_worker(worker_env, queues="default", pool="prefork", concurrency=2, log_path=tmp_path / "w.log"):
        for n in [0, 1, 2, 3, 4, 2, 0]:  # two trades published twice
            with pg_container.session() as session:
                pg_container.bus.publish(session, TradeClosed(**_payload(n)))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sizing.status()["total_updates"] < 5:
            time.sleep(0.2)
        time.sleep(1.0)  # let a wrongly repeated update show up
        pg_container.bus.deliver_pending(force=True)
    assert meta.status()["total_updates"] == 5 and sizing.status()["total_updates"] == 5
    assert meta.status()["visits"] == 5, (tmp_path / "w.log").read_text()[-2000:]
