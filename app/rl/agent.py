"""What both agents share: select, update from a trade, save, load, reset, maintain.

Settings are read from the policy at each call (learning rate, discount and the epsilon
schedule from `Policy.rl`; snapshot interval, prune threshold and the reset flag from
`Policy.clm_config.rl_maintenance`), so a policy edit takes effect on the next trade.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from app.core.policy import Policy
from app.core.system import TradingHalt
from app.core.topics import RLReset, RLUpdated
from app.rl.qlearning import QParams, epsilon_greedy
from app.rl.store import AppliedUpdate, QTableStore

if TYPE_CHECKING:
    from app.core.container import Container


@dataclass(frozen=True)
class Choice:
    state_key: str
    action: str
    q_value: float
    explored: bool
    epsilon: float
    version: int
    q_values: dict[str, float]  # the state's row it chose from (actions never tried: 0)


@dataclass(frozen=True)
class ResetResult:
    old_version: int
    new_version: int
    reason: str


RL_RANDOM = "rl_random"  # container.extras: a random.Random every agent of the process explores with


def q_params(policy: Policy) -> QParams:
    rl = policy.rl
    return QParams(rl.learning_rate, rl.discount, rl.epsilon_decay, rl.epsilon_min)


class TabularAgent:
    rl_type = ""  # rl_versions.rl_type
    updated_event: type[RLUpdated]  # rl.meta.updated / rl.sizing.updated
    reset_event: type[RLReset]  # rl.meta.reset / rl.sizing.reset
    file_prefix = ""  # snapshot file name: <file_prefix>_v<version>.json
    actions: tuple[str, ...] = ()

    def __init__(self, container: Container, rng: random.Random | None = None) -> None:
        self.container = container
        # Exploration's random source: `rng`, else the container's (a replay seeds one, so that the same
        # seed makes the same decisions), else fresh entropy.
        self.rng = rng or container.extras.get(RL_RANDOM) or random.Random()
        self.store = QTableStore(container, self.rl_type, self.file_prefix, self.actions)

    # ------------------------------------------------------------------ select / update

    @contextmanager
    def _selecting(self, state_key: str) -> Iterator[tuple[Session, Choice, Policy, TradingHalt | None]]:
        """Choose an action epsilon-greedily (with the policy and the trading halt read in the same
        statement); the caller records the decision and publishes its event in the session."""
        with self.container.session() as session:
            read = self.store.read_selection(session, state_key)
            policy = self.container.policy_store.resolve(session, read.policy_version)
            version, epsilon, row = read.agent_version, read.epsilon, read.q_row
            if version is None or epsilon is None:  # the agent's first decision: create its row
                agent = self.store.lock_agent(session, policy.rl.epsilon_start)
                version, epsilon, row = (
                    agent.version,
                    agent.epsilon,
                    self.store.q_row(session, agent.version, state_key),
                )
            action, explored = epsilon_greedy(row, self.actions, epsilon, self.rng)
            yield (
                session,
                Choice(state_key, action, row.get(action, 0.0), explored, epsilon, version, row),
                policy,
                read.halt,
            )

    def _update(
        self,
        *,
        trade_id: str,
        state_key: str,
        action: str,
        reward: float,
        next_state_key: str | None,
        event: dict[str, Any],
    ) -> AppliedUpdate | None:
        """Apply one trade (once) and publish `updated_event` in the same transaction."""
        if action not in self.actions:
            raise ValueError(f"{self.rl_type}: action {action!r} is not one of this agent's actions")
        policy = self.container.policy_store.get()
        maintenance = policy.clm_config.rl_maintenance
        with self.container.session() as session:
            agent = self.store.lock_agent(session, policy.rl.epsilon_start)
            applied = self.store.apply_update(
                session,
                agent,
                trade_id=trade_id,
                state_key=state_key,
                action=action,
                reward=reward,
                next_state_key=next_state_key,
                params=q_params(policy),
                learning_rate=policy.rl.learning_rate,
                snapshot_interval=maintenance.snapshot_interval_trades,
            )
            if applied is not None:
                update = self.updated_event(
                    **event,
                    action=action,
                    reward=reward,
                    version=applied.version,
                    trade_id=trade_id,
                    q_value=applied.q_value,
                    epsilon=applied.epsilon,
                )
                self.container.bus.publish(session, update)
            return applied

    # ------------------------------------------------------------------ versions

    def save_version(self, version: int | None = None, reason: str = "manual") -> int:
        """Snapshot the live table; `version`, if given, must be the live version. Returns it."""
        policy = self.container.policy_store.get()
        with self.container.session() as session:
            agent = self.store.lock_agent(session, policy.rl.epsilon_start)
            if version is not None and version != agent.version:
                raise ValueError(f"{self.rl_type}: the live version to save is {agent.version}, not {version}")
            return self.store.snapshot(session, agent, policy.rl.learning_rate, reason=reason).version

    def load_version(self, version: int) -> int:
        """Make saved `version` the live table (unsaved live updates are saved first); returns the live version."""
        policy = self.container.policy_store.get()
        with self.container.session() as session:
            agent = self.store.lock_agent(session, policy.rl.epsilon_start)
            _, document = self.store.read_snapshot(session, version)
            if agent.updates_since_snapshot > 0:
                self.store.snapshot(session, agent, policy.rl.learning_rate, reason=f"before loading v{version}")
            self.store.replace_live(session, agent, document)
            return agent.version

    def reset_on_regime_shift(self, reason: str = "regime_shift", force: bool = False) -> ResetResult | None:
        """Archive the live table and start a fresh one at `Policy.rl.reset_epsilon`.

        Does nothing (returns None) when the policy's `reset_on_regime_change` is off, unless `force`.
        """
        policy = self.container.policy_store.get()
        if not force and not policy.clm_config.rl_maintenance.reset_on_regime_change:
            return None
        with self.container.session() as session:
            agent = self.store.lock_agent(session, policy.rl.epsilon_start)
            old = self.store.reset(session, agent, policy.rl.learning_rate, policy.rl.reset_epsilon, reason)
            result = ResetResult(old, agent.version, reason)
            self.container.bus.publish(
                session,
                self.reset_event(old_version=old, new_version=agent.version, reason=reason, epsilon=agent.epsilon),
            )
            return result

    def run_maintenance(self) -> dict[str, Any]:
        """Snapshot when anything changed since the last one, then prune stale states."""
        policy = self.container.policy_store.get()
        maintenance = policy.clm_config.rl_maintenance
        with self.container.session() as session:
            agent = self.store.lock_agent(session, policy.rl.epsilon_start)
            saved = None
            if agent.updates_since_snapshot > 0:
                saved = self.store.snapshot(session, agent, policy.rl.learning_rate, reason="maintenance").version
            pruned = self.store.prune(session, agent, maintenance.prune_old_states_threshold)
            return {
                "rl_type": self.rl_type,
                "saved_version": saved,
                "pruned_states": len(pruned),
                "live": agent.version,
            }

    # ------------------------------------------------------------------ reading

    def status(self) -> dict[str, Any]:
        with self.container.session_factory() as session:
            agent = self.store.read_agent(session)
            versions = self.store.versions(session)
            table = self.store.q_table(session, agent.version) if agent else {}
            return {
                "rl_type": self.rl_type,
                "version": agent.version if agent else None,
                "epsilon": agent.epsilon if agent else self.container.policy_store.get().rl.epsilon_start,
                "total_updates": agent.total_updates if agent else 0,
                "states": len(table),
                "visits": self.store.visits(session, agent.version) if agent else 0,
                "versions": [
                    {"version": v.version, "archived": v.archived_at is not None, "file": v.q_table_file}
                    for v in versions
                ],
            }

    def q_table(self, version: int | None = None) -> dict[str, dict[str, float]]:
        """The live table, or a saved version's (read from its verified snapshot file)."""
        with self.container.session_factory() as session:
            if version is not None:
                return dict(self.store.read_snapshot(session, version)[1]["q_table"])
            agent = self.store.read_agent(session)
            return self.store.q_table(session, agent.version) if agent else {}
