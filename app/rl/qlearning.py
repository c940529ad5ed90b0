"""The tabular Q-learning rule, epsilon-greedy selection with decay, and pruning.

Pure: values in, values out. An action never tried in a state has Q = 0. A trade is
usually the end of its own episode, so the update takes `next_q_row=None` for "terminal"
(target = reward); with a next state, target = reward + discount * max_a' Q(s', a').
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class QParams:
    learning_rate: float
    discount: float
    epsilon_decay: float
    epsilon_min: float

    def __post_init__(self) -> None:
        if not 0 < self.learning_rate <= 1:
            raise ValueError(f"learning_rate: {self.learning_rate} must be in (0, 1]")
        if not 0 <= self.discount <= 1:
            raise ValueError(f"discount: {self.discount} must be in [0, 1]")
        if not 0 < self.epsilon_decay <= 1:
            raise ValueError(f"epsilon_decay: {self.epsilon_decay} must be in (0, 1]")
        if not 0 <= self.epsilon_min <= 1:
            raise ValueError(f"epsilon_min: {self.epsilon_min} must be in [0, 1]")


def greedy_action(q_row: Mapping[str, float], actions: Sequence[str], rng: random.Random) -> str:
    """The action with the highest Q (unvisited = 0); ties broken at random."""
    best_value = max(q_row.get(a, 0.0) for a in actions)
    best = [a for a in actions if q_row.get(a, 0.0) == best_value]
    return best[0] if len(best) == 1 else rng.choice(best)


def epsilon_greedy(
    q_row: Mapping[str, float], actions: Sequence[str], epsilon: float, rng: random.Random
) -> tuple[str, bool]:
    """(action, explored): a random action with probability `epsilon`, the greedy one otherwise."""
    if not actions:
        raise ValueError("no actions to choose from")
    if rng.random() < epsilon:
        return rng.choice(list(actions)), True
    return greedy_action(q_row, actions, rng), False


def td_target(reward: float, next_q_row: Mapping[str, float] | None, discount: float) -> float:
    if next_q_row is None:
        return reward
    next_max = max(next_q_row.values(), default=0.0)
    # Unvisited actions are worth 0, so the best next action is never below 0 when some are unseen.
    return reward + discount * next_max


def q_update(q_value: float, target: float, learning_rate: float) -> float:
    """Q(s,a) += lr * (target - Q(s,a))."""
    updated = q_value + learning_rate * (target - q_value)
    if not math.isfinite(updated):
        raise ValueError(f"Q update produced {updated} (Q={q_value}, target={target})")
    return updated


def decay_epsilon(epsilon: float, params: QParams) -> float:
    return max(params.epsilon_min, epsilon * params.epsilon_decay)


def stale_states(last_update_by_state: Mapping[str, int], total_updates: int, threshold: int) -> list[str]:
    """States whose last update lies more than `threshold` agent updates in the past."""
    return sorted(s for s, last in last_update_by_state.items() if total_updates - last > threshold)


@dataclass
class QTable:
    """An in-memory Q-table: the same rule the database-backed agents apply, for replays."""

    actions: Sequence[str]
    params: QParams
    epsilon: float
    values: dict[str, dict[str, float]] = field(default_factory=dict)
    last_update: dict[str, int] = field(default_factory=dict)
    total_updates: int = 0

    def select(self, state_key: str, rng: random.Random) -> tuple[str, bool]:
        return epsilon_greedy(self.values.get(state_key, {}), self.actions, self.epsilon, rng)

    def greedy(self, state_key: str, rng: random.Random) -> str:
        return greedy_action(self.values.get(state_key, {}), self.actions, rng)

    def update(self, state_key: str, action: str, reward: float, next_state_key: str | None = None) -> float:
        if action not in self.actions:
            raise ValueError(f"action {action!r} is not one of this table's actions")
        next_row = None if next_state_key is None else self.values.get(next_state_key, {})
        target = td_target(reward, next_row, self.params.discount)
        row = self.values.setdefault(state_key, {})
        row[action] = q_update(row.get(action, 0.0), target, self.params.learning_rate)
        self.total_updates += 1
        self.last_update[state_key] = self.total_updates
        self.epsilon = decay_epsilon(self.epsilon, self.params)
        return row[action]

    def prune(self, threshold: int) -> list[str]:
        gone = stale_states(self.last_update, self.total_updates, threshold)
        for state in gone:
            self.values.pop(state, None)
            self.last_update.pop(state, None)
        return gone
