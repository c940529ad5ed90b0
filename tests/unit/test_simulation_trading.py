"""The simulated engine computes the agents' states itself, as an external engine would: by the same rules."""

from __future__ import annotations

from app.rl.meta_space import performance_level
from app.simulation import trading


def test_the_engines_performance_level_is_the_agents_rule() -> None:
    for pnl in (-50.0, -3.0001, -3.0, 0.0, 4.999, 5.0, 5.0001, 80.0):
        assert trading.performance_level(pnl) == performance_level(pnl), pnl
    assert [trading.performance_level(p) for p in (-4.0, 1.0, 6.0)] == ["POOR", "NEUTRAL", "GOOD"]
