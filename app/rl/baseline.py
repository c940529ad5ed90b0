"""The agent's winrate against a uniformly random policy on the same trades (specification: RL winrate
vs random baseline).

Pure: experiences in, two winrates out. A trade is a win when its reward is positive.

Why an expected value and not a seeded random replay: a trade's outcome is known only for
the action the agent took. A replay that lets a random policy pick an action can score a
trade only when the pick equals the taken action (Li et al., 2011, "Unbiased offline
evaluation of contextual-bandit-based news article recommendation"), so it keeps about
1 / |actions| of the trades: 1 in 5 for the meta agent, 1 in 270 for the sizing agent,
and its answer moves with the seed. Instead the baseline is the *expected* winrate of a
uniformly random action in each traded state,

    baseline = mean over trades t of  (1 / |A|) * sum over actions a of  p(win | s_t, a),

which uses every trade, needs no seed, and is the random policy's winrate on exactly the
states the agent traded in. p(win | s, a) is the observed win frequency of `a` in `s`,
shrunk towards the action's win frequency over all states, which is shrunk towards the
overall win frequency (`prior_trades` pseudo-trades at each level; empirical Bayes).
Epsilon-greedy exploration with `epsilon_min > 0` keeps trying every action in every state
that recurs, so the estimate converges to the true random-policy winrate. Until then,
state/action pairs never tried borrow the overall winrate, which pulls the baseline towards
the agent's own winrate: the comparison understates the agent's edge (or its deficit), it
never invents one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

METHOD = "expected_uniform_action_shrunk"


@dataclass(frozen=True)
class Experience:
    state_key: str
    action: str
    reward: float


@dataclass(frozen=True)
class WinrateComparison:
    trades: int
    winrate: float  # the agent's: share of its trades with a positive reward
    random_baseline_winrate: float  # a uniformly random action's expected winrate on the same trades

    def to_metadata(self) -> dict[str, Any]:
        return {
            "baseline_trades": self.trades,
            "winrate": self.winrate,
            "random_baseline_winrate": self.random_baseline_winrate,
            "random_baseline_method": METHOD,
        }


def compare_with_random(
    experiences: Iterable[Experience], actions: Sequence[str], prior_trades: float = 1.0
) -> WinrateComparison | None:
    """Both winrates over `experiences`; None without any trade. `actions`: the agent's whole action set."""
    trades = list(experiences)
    if not trades:
        return None
    if not actions:
        raise ValueError("the random baseline needs the agent's actions")
    if prior_trades <= 0:
        raise ValueError(f"prior_trades: {prior_trades} must be positive")
    overall = sum(1 for t in trades if t.reward > 0) / len(trades)
    tried: Counter[str] = Counter()
    won: Counter[str] = Counter()
    tried_in: Counter[tuple[str, str]] = Counter()
    won_in: Counter[tuple[str, str]] = Counter()
    for t in trades:
        win = 1 if t.reward > 0 else 0
        tried[t.action] += 1
        won[t.action] += win
        tried_in[(t.state_key, t.action)] += 1
        won_in[(t.state_key, t.action)] += win
    by_action = {a: (won[a] + prior_trades * overall) / (tried[a] + prior_trades) for a in actions}
    # An action never tried in a state is worth its pooled rate there, so each state starts from the
    # sum of those and corrects only for the actions it saw: O(pairs seen), not O(states x actions).
    pooled_sum = sum(by_action.values())
    correction: dict[str, float] = {}
    for (state, a), n in tried_in.items():
        if a in by_action:
            shrunk = (won_in[(state, a)] + prior_trades * by_action[a]) / (n + prior_trades)
            correction[state] = correction.get(state, 0.0) + shrunk - by_action[a]

    def random_winrate(state_key: str) -> float:
        return (pooled_sum + correction.get(state_key, 0.0)) / len(actions)

    trades_in = Counter(t.state_key for t in trades)
    baseline = sum(n * random_winrate(state) for state, n in trades_in.items()) / len(trades)
    return WinrateComparison(len(trades), overall, baseline)
