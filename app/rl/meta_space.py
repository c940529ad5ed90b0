"""The meta strategy agent's state and action spaces (specification: `rl_meta_strategy`).

State: market regime, volatility level, liquidity level, recent performance; all already
categorical. Action: one of the five strategies. A state's key joins its four levels with
underscores, e.g. `TRENDING_HIGH_MEDIUM_GOOD`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

REGIMES = ("TRENDING", "RANGING", "CHOPPY", "VOLATILE")
VOLATILITY_LEVELS = ("LOW", "MEDIUM", "HIGH", "EXTREME")
LIQUIDITY_LEVELS = ("LOW", "MEDIUM", "HIGH")
PERFORMANCE_LEVELS = ("GOOD", "NEUTRAL", "POOR")

# recent_performance from the last 7 days' PnL (specification: GOOD > 5 %, POOR < -3 %).
GOOD_PERFORMANCE_PCT = 5.0
POOR_PERFORMANCE_PCT = -3.0


class StrategyType(Enum):
    TREND_FOLLOW = "trend_follow"
    MEAN_REVERSION = "mean_reversion"
    BREAKOUT = "breakout"
    RANGE_BOUND = "range_bound"
    DEFENSIVE = "defensive"  # low risk, high confidence only


STRATEGY_ACTIONS: tuple[str, ...] = tuple(s.value for s in StrategyType)


def parse_strategy(value: StrategyType | str, where: str = "action") -> StrategyType:
    if isinstance(value, StrategyType):
        return value
    try:
        return StrategyType(str(value).lower())
    except ValueError:
        raise ValueError(f"{where}: {value!r} is not one of {list(STRATEGY_ACTIONS)}") from None


def _check(field: str, value: str, allowed: tuple[str, ...], where: str) -> str:
    if not isinstance(value, str) or value.upper() not in allowed:
        raise ValueError(f"{where}.{field}: {value!r} is not one of {list(allowed)}")
    return value.upper()


@dataclass(frozen=True)
class MetaStrategyState:
    market_regime: str  # TRENDING, RANGING, CHOPPY, VOLATILE
    volatility_level: str  # LOW, MEDIUM, HIGH, EXTREME
    liquidity_level: str  # LOW, MEDIUM, HIGH
    recent_performance: str  # GOOD (> 5 % last 7 d), NEUTRAL, POOR (< -3 %)

    def __post_init__(self) -> None:
        for field, allowed in (
            ("market_regime", REGIMES),
            ("volatility_level", VOLATILITY_LEVELS),
            ("liquidity_level", LIQUIDITY_LEVELS),
            ("recent_performance", PERFORMANCE_LEVELS),
        ):
            object.__setattr__(self, field, _check(field, getattr(self, field), allowed, "meta_state"))

    @property
    def key(self) -> str:
        return f"{self.market_regime}_{self.volatility_level}_{self.liquidity_level}_{self.recent_performance}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "meta_state") -> MetaStrategyState:
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
        missing = [
            f for f in ("market_regime", "volatility_level", "liquidity_level", "recent_performance") if f not in data
        ]
        if missing:
            raise ValueError(f"{where}: missing {missing}")
        try:
            return cls(
                str(data["market_regime"]),
                str(data["volatility_level"]),
                str(data["liquidity_level"]),
                str(data["recent_performance"]),
            )
        except ValueError as exc:
            raise ValueError(str(exc).replace("meta_state", where, 1)) from None


def performance_level(pnl_last_7d_pct: float) -> str:
    """GOOD above +5 %, POOR below -3 %, NEUTRAL between (specification)."""
    if pnl_last_7d_pct > GOOD_PERFORMANCE_PCT:
        return "GOOD"
    if pnl_last_7d_pct < POOR_PERFORMANCE_PCT:
        return "POOR"
    return "NEUTRAL"
