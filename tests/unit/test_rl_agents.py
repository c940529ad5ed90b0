"""Both agents as services on the embedded stack (SQLite, inline events, local artifacts)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from sqlalchemy import func, select

from app.core.db.models import Event, RLAgentState, RLAppliedUpdate, RLVersion
from app.core.topics import TradeClosed
from app.rl.agent import RL_RANDOM
from app.rl.meta_space import MetaStrategyState, StrategyType
from app.rl.meta_strategy import RLMetaStrategy
from app.rl.position_sizing import RLPositionSizing
from app.rl.sizing_space import SizingState
from app.rl.store import VersionNotFoundError

META = MetaStrategyState("TRENDING", "HIGH", "MEDIUM", "GOOD")
SIZING = SizingState("TRENDING", 0.8, 0.1, 0.6, 1.5)


def _topics(container, pattern: str = "rl.") -> list[str]:
    with container.session_factory() as session:
        return [t for t in session.scalars(select(Event.topic).order_by(Event.id)) if t.startswith(pattern)]


def _trade(trade_id: str, pnl: float = 2.0, **extra: Any) -> dict[str, Any]:
    return {
        "trade_id": trade_id,
        "pnl_pct": pnl,
        "duration_hours": 3.0,
        "max_drawdown_pct": 0.5,
        "hit_tp": pnl > 0,
        "hit_sl": pnl <= 0,
        "winrate": 0.6,
        "meta_state": META.to_dict(),
        "meta_action": "breakout",
        "sizing_state": SIZING.to_dict(),
        "sizing_action": "size-0.5_lev-2_tp-balanced_sl-medium",
    } | extra


def test_select_update_and_events(sqlite_container) -> None:
    meta = RLMetaStrategy(sqlite_container, rng=random.Random(0))
    strategy = meta.select_strategy(META)
    assert isinstance(strategy, StrategyType)
    applied = meta.update_q_table(META, StrategyType.BREAKOUT, 4.2, trade_id="t1")
    assert applied is not None and applied.q_value == pytest.approx(0.42) and applied.total_updates == 1
    assert applied.epsilon == pytest.approx(0.5 * 0.995)
    assert meta.q_table() == {META.key: {"breakout": pytest.approx(0.42)}}
    # with epsilon 0 the learned best strategy is chosen
    sqlite_container.policy_store.update({"rl": {"epsilon_start": 0.0}})
    with sqlite_container.session() as session:
        session.get(RLAgentState, "meta_strategy").epsilon = 0.0
    assert meta.select_strategy(META) is StrategyType.BREAKOUT
    assert _topics(sqlite_container) == ["rl.meta.strategy_selected", "rl.meta.updated", "rl.meta.strategy_selected"]
    events = sqlite_container.bus.recent("rl.meta.updated")
    assert events[0]["payload"]["reward"] == 4.2 and events[0]["payload"]["version"] == 1


def test_sizing_decision_is_clamped_and_published(sqlite_container) -> None:
    sqlite_container.policy_store.update({"risk": {"active_mode": "conservative"}})
    sizing = RLPositionSizing(sqlite_container, rng=random.Random(3))
    for _ in range(30):
        decision = sizing.get_sizing_decision(SIZING, balance_usd=5_000, open_positions=1)
        assert decision.size_usd <= 0.01 * 5_000 and decision.leverage <= 3
    payload = sqlite_container.bus.recent("rl.sizing.decision")[0]["payload"]
    assert {"state", "action", "size_usd", "leverage", "clamped", "clamp_reasons"} <= set(payload)
    assert payload["size_usd"] <= 50.0
    blocked = sizing.get_sizing_decision(SIZING, balance_usd=5_000, open_positions=3)
    assert not blocked.allowed and "max_positions" in blocked.clamp_reasons[0]


def test_a_trade_closed_event_updates_both_agents_once(sqlite_container) -> None:
    for _ in range(2):  # the same trade delivered twice
        with sqlite_container.session() as session:
            sqlite_container.bus.publish(session, TradeClosed(**_trade("t-42")))
    meta, sizing = RLMetaStrategy(sqlite_container), RLPositionSizing(sqlite_container)
    assert meta.status()["total_updates"] == 1 and sizing.status()["total_updates"] == 1
    assert meta.status()["visits"] == 1 and sizing.status()["visits"] == 1
    # meta reward: 2 + 24/3*0.1 - 0.5*2 + (0.6-0.5)*10 = 2.8; sizing: 2 - 0.15 - 1.5 + 1 = 1.35
    assert meta.q_table()[META.key]["breakout"] == pytest.approx(0.28)
    assert sizing.q_table()[SIZING.key]["size-0.5_lev-2_tp-balanced_sl-medium"] == pytest.approx(0.135)
    assert _topics(sqlite_container, "rl.") == ["rl.meta.updated", "rl.sizing.updated"]
    with sqlite_container.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(RLAppliedUpdate)) == 2


def test_a_malformed_trade_is_recorded_as_failed_and_changes_nothing(sqlite_container) -> None:
    with sqlite_container.session() as session:
        sqlite_container.bus.publish(session, TradeClosed(**_trade("bad", meta_action="yolo")))
    event = sqlite_container.bus.recent("execution.trade.closed")[0]
    assert event["status"] == "pending"  # kept, to be retried / inspected
    with sqlite_container.session_factory() as session:
        row = session.get(Event, event["id"])
        assert "meta_action: 'yolo'" in row.last_error
        assert session.scalar(select(func.count()).select_from(RLAppliedUpdate)) == 0


def test_a_trade_without_rl_parts_is_not_the_agents_business(sqlite_container) -> None:
    with sqlite_container.session() as session:
        sqlite_container.bus.publish(
            session, TradeClosed(trade_id="other", symbol="BTC/USDT", pnl_pct=1.0, duration_hours=1.0)
        )
    with sqlite_container.session_factory() as session:
        row = session.scalars(select(Event).where(Event.topic == "execution.trade.closed")).one()
        failures = [line for line in (row.last_error or "").splitlines() if "app.rl_" in line]
        assert failures == []
        assert session.scalar(select(func.count()).select_from(RLAppliedUpdate)) == 0
    # only the sizing part: the meta agent stays out, the sizing agent learns
    trade = {k: v for k, v in _trade("half").items() if not k.startswith("meta_")}
    with sqlite_container.session() as session:
        sqlite_container.bus.publish(session, TradeClosed(**trade))
    assert RLMetaStrategy(sqlite_container).status()["total_updates"] == 0
    assert RLPositionSizing(sqlite_container).status()["total_updates"] == 1


def test_snapshots_every_interval_in_the_specifications_format(sqlite_container) -> None:
    sqlite_container.policy_store.update({"clm_config": {"rl_maintenance": {"snapshot_interval_trades": 4}}})
    meta = RLMetaStrategy(sqlite_container)
    for i in range(9):
        meta.update_q_table(META, "trend_follow", float(i), trade_id=f"t{i}")
    with sqlite_container.session_factory() as session:
        rows = session.scalars(select(RLVersion).order_by(RLVersion.version)).all()
    assert [(r.version, r.total_updates, r.total_states) for r in rows] == [(1, 4, 1), (2, 8, 1)]
    status = meta.status()
    assert status["version"] == 3 and status["total_updates"] == 9
    data = sqlite_container.artifacts.get_bytes(rows[1].q_table_file, rows[1].sha256)
    document = json.loads(data)
    assert set(document) == {"version", "created_at", "q_table", "metadata"}
    assert document["version"] == 2 and set(document["metadata"]) == {"total_updates", "epsilon", "learning_rate"}
    assert document["metadata"]["total_updates"] == 8
    assert rows[1].q_table_file == "rl/meta_strategy/rl_meta_strategy_v2.json"
    assert document["q_table"][META.key]["trend_follow"] == pytest.approx(meta.q_table(2)[META.key]["trend_follow"])


def test_reset_archives_the_old_table_which_stays_loadable(sqlite_container) -> None:
    sizing = RLPositionSizing(sqlite_container)
    for i in range(5):
        sizing.update_q_table(SIZING, "size-1.0_lev-3_tp-balanced_sl-tight", 1.0 + i, trade_id=f"s{i}")
    before = sizing.q_table()
    epsilon_before = sizing.status()["epsilon"]
    result = sizing.reset_on_regime_shift(reason="regime TRENDING -> CHOPPY")
    assert result is not None and (result.old_version, result.new_version) == (1, 2)
    fresh = sizing.status()
    assert fresh["version"] == 2 and fresh["states"] == 0 and fresh["total_updates"] == 0 and fresh["epsilon"] == 0.5
    assert fresh["versions"] == [
        {"version": 1, "archived": True, "file": "rl/position_sizing/rl_position_sizing_v1_archived.json"}
    ]
    assert sizing.q_table(1) == before
    reset_event = sqlite_container.bus.recent("rl.sizing.reset")[0]["payload"]
    assert reset_event["old_version"] == 1 and reset_event["new_version"] == 2
    # the new table learns; loading v1 saves that work first, then brings v1 back
    sizing.update_q_table(SIZING, "size-0.3_lev-1_tp-conservative_sl-wide", -1.0, trade_id="s-new")
    live = sizing.load_version(1)
    assert live == 3 and sizing.q_table() == before
    assert sizing.status()["epsilon"] == pytest.approx(epsilon_before) and sizing.status()["total_updates"] == 5
    assert set(sizing.q_table(2)[SIZING.key]) == {"size-0.3_lev-1_tp-conservative_sl-wide"}
    with pytest.raises(VersionNotFoundError, match="no saved version 9"):
        sizing.load_version(9)


def test_reset_follows_the_policy_flag(sqlite_container) -> None:
    sqlite_container.policy_store.update({"clm_config": {"rl_maintenance": {"reset_on_regime_change": False}}})
    meta = RLMetaStrategy(sqlite_container)
    assert meta.reset_on_regime_shift() is None
    assert meta.reset_on_regime_shift(force=True) is not None
    assert _topics(sqlite_container) == ["rl.meta.reset"]


def test_a_tampered_snapshot_is_refused(sqlite_container) -> None:
    meta = RLMetaStrategy(sqlite_container)
    meta.update_q_table(META, "defensive", 1.0, trade_id="x")
    version = meta.save_version()
    with pytest.raises(ValueError, match="live version to save is 2"):
        meta.save_version(5)
    path = meta.status()["versions"][0]["file"]
    sqlite_container.artifacts.put_bytes(path, b'{"version": 1}')
    with pytest.raises(Exception, match="refusing to load"):
        meta.load_version(version)


def test_maintenance_snapshots_changed_agents_and_prunes_idle_states(sqlite_container) -> None:
    from app.rl.maintenance import run_rl_maintenance

    sqlite_container.policy_store.update({"clm_config": {"rl_maintenance": {"prune_old_states_threshold": 3}}})
    meta = RLMetaStrategy(sqlite_container)
    idle = MetaStrategyState("RANGING", "LOW", "LOW", "POOR")
    meta.update_q_table(idle, "range_bound", 1.0, trade_id="idle")
    for i in range(5):
        meta.update_q_table(META, "trend_follow", 1.0, trade_id=f"busy{i}")
    report = run_rl_maintenance(sqlite_container)
    assert report["meta_strategy"] == {"rl_type": "meta_strategy", "saved_version": 1, "pruned_states": 1, "live": 2}
    assert report["position_sizing"]["saved_version"] is None  # nothing changed: no snapshot
    assert set(meta.q_table()) == {META.key}
    assert set(meta.q_table(1)) == {META.key, idle.key}  # the snapshot kept it


def test_agents_explore_with_the_containers_random_source_when_it_has_one(sqlite_container) -> None:
    # A replay seeds one source for every agent of its process (a new agent per API request): the same
    # seed, the same sequence of choices; without one, each agent draws on fresh entropy.
    def choices(seed: int) -> list[str]:
        sqlite_container.extras[RL_RANDOM] = random.Random(seed)
        return [RLMetaStrategy(sqlite_container).select_strategy(META).value for _ in range(30)]

    sqlite_container.policy_store.update({"rl": {"epsilon_start": 1.0, "epsilon_min": 1.0}})  # every choice explores
    assert choices(3) == choices(3)
    assert choices(3) != choices(4)
    source = random.Random(5)
    sqlite_container.extras[RL_RANDOM] = source
    assert RLPositionSizing(sqlite_container).rng is source
    assert RLMetaStrategy(sqlite_container, rng=random.Random(1)).rng is not source
    del sqlite_container.extras[RL_RANDOM]
    assert RLMetaStrategy(sqlite_container).rng is not RLMetaStrategy(sqlite_container).rng
