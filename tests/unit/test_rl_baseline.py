"""The RL agents' winrate against a random policy: the estimator, and its producer (saved versions) and metric."""

from __future__ import annotations

import random

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from app.api import create_app
from app.core.db.models import RLAppliedUpdate, RLVersion
from app.rl.baseline import Experience, compare_with_random
from app.rl.meta_space import MetaStrategyState
from app.rl.meta_strategy import RLMetaStrategy
from tests.api_fixtures import train_meta_agent

ACTIONS = ("a", "b", "c", "d")


def test_no_trades_no_comparison() -> None:
    assert compare_with_random([], ACTIONS) is None


def test_when_every_action_does_the_same_the_baseline_is_the_agents_winrate() -> None:
    rng = random.Random(1)
    trades = [Experience("s", a, 1.0 if rng.random() < 0.5 else -1.0) for a in ACTIONS for _ in range(50)]
    result = compare_with_random(trades, ACTIONS)
    assert result is not None and result.trades == 200
    assert result.random_baseline_winrate == pytest.approx(result.winrate, abs=0.01)


def test_baseline_by_hand() -> None:
    # State s: the agent played "a" 3 times (3 wins) and "b" once (a loss); "c" and "d" never.
    trades = [Experience("s", "a", 2.0)] * 3 + [Experience("s", "b", -1.0)]
    result = compare_with_random(trades, ACTIONS, prior_trades=1.0)
    assert result is not None and result.winrate == 0.75
    overall = 0.75
    pooled = {"a": (3 + overall) / 4, "b": (0 + overall) / 2, "c": overall, "d": overall}
    in_state = {"a": (3 + pooled["a"]) / 4, "b": (0 + pooled["b"]) / 2, "c": pooled["c"], "d": pooled["d"]}
    assert result.random_baseline_winrate == pytest.approx(sum(in_state.values()) / 4)
    assert result.to_metadata()["random_baseline_winrate"] == result.random_baseline_winrate


def test_a_zero_reward_is_not_a_win_and_bad_arguments_are_refused() -> None:
    result = compare_with_random([Experience("s", "a", 0.0)], ACTIONS)
    assert result is not None and result.winrate == 0.0 and result.random_baseline_winrate == 0.0
    with pytest.raises(ValueError, match="actions"):
        compare_with_random([Experience("s", "a", 1.0)], ())
    with pytest.raises(ValueError, match="prior_trades"):
        compare_with_random([Experience("s", "a", 1.0)], ACTIONS, prior_trades=0)


def test_a_learning_agent_beats_random_and_its_version_records_both(sqlite_container) -> None:
    version = train_meta_agent(sqlite_container, trades=200)
    with sqlite_container.session_factory() as session:
        saved = session.scalars(select(RLVersion).where(RLVersion.version == version)).one()
        experiences = session.scalars(select(RLAppliedUpdate)).all()
    assert len(experiences) == 200 and all(e.version == version and e.state_key and e.action for e in experiences)
    metadata = saved.metadata_ or {}
    assert metadata["baseline_trades"] == 200
    # One strategy in five wins in each state: random wins about 1 in 5; the agent learns the winner.
    assert 0.15 < metadata["random_baseline_winrate"] < 0.4
    assert metadata["winrate"] > 0.6
    assert metadata["winrate"] > metadata["random_baseline_winrate"] + 0.3

    text = create_app(sqlite_container).test_client().get("/metrics").get_data(as_text=True)
    samples = {
        (s.name, s.labels.get("rl_type")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("clm_rl_random_baseline_winrate", "meta_strategy")] == pytest.approx(
        metadata["random_baseline_winrate"]
    )
    assert samples[("clm_rl_version_winrate", "meta_strategy")] == pytest.approx(metadata["winrate"])
    assert samples[("clm_rl_winrate", "meta_strategy")] == pytest.approx(metadata["winrate"])


def test_a_version_covers_the_trades_since_the_last_reset(sqlite_container) -> None:
    meta = RLMetaStrategy(sqlite_container)
    state = MetaStrategyState("CHOPPY", "LOW", "LOW", "POOR")
    for i in range(4):
        meta.update_q_table(state, "defensive", -1.0, trade_id=f"before-{i}")
    reset = meta.reset_on_regime_shift(force=True)
    assert reset is not None
    for i in range(3):
        meta.update_q_table(state, "defensive", 1.0, trade_id=f"after-{i}")
    saved = meta.save_version()
    with sqlite_container.session_factory() as session:
        rows = {v.version: v.metadata_ or {} for v in session.scalars(select(RLVersion))}
    assert rows[reset.old_version]["baseline_trades"] == 4 and rows[reset.old_version]["winrate"] == 0.0
    assert rows[saved]["baseline_trades"] == 3 and rows[saved]["winrate"] == 1.0
    # a save with no new trade still learned from the same lineage: the same comparison
    again = meta.save_version()
    with sqlite_container.session_factory() as session:
        metadata = session.scalars(select(RLVersion).where(RLVersion.version == again)).one().metadata_ or {}
    assert metadata["baseline_trades"] == 3 and metadata["winrate"] == 1.0
    text = create_app(sqlite_container).test_client().get("/metrics").get_data(as_text=True)
    assert 'clm_rl_version_winrate{rl_type="meta_strategy"} 1.0' in text
