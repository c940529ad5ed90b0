"""The position sizing agent's state and action spaces (specification: `rl_position_sizing`).

The state's continuous values are discretised into these bins (a value equal to an edge
goes to the upper bin):

| field | unit | edges | labels |
|---|---|---|---|
| signal_confidence | 0..1 | 0.55, 0.70, 0.85 | LOW, MED, HIGH, VHIGH |
| portfolio_exposure | share of capital in positions, >= 0 | 0.25, 0.50, 0.75 | LOW, MED, HIGH, FULL |
| recent_winrate | last 20 trades, 0..1 | 0.40, 0.50, 0.60 | POOR, BELOW, ABOVE, GOOD |
| volatility | ATR as % of price, >= 0 | 0.5, 1.0, 2.0, 4.0 | CALM, LOW, MED, HIGH, EXTREME |

so there are 4 x 4 x 4 x 4 x 5 = 1280 states; a key reads
`TRENDING_conf-HIGH_exp-LOW_wr-ABOVE_vol-MED`.

Actions are every combination of size multiplier, leverage, TP strategy and SL strategy
(5 x 6 x 3 x 3 = 270); a key reads `size-1.0_lev-5_tp-balanced_sl-medium`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from itertools import product
from typing import Any

from app.rl.meta_space import REGIMES

SIZE_MULTIPLIERS = (0.3, 0.5, 0.7, 1.0, 1.5)
LEVERAGES = (1, 2, 3, 5, 7, 10)
TP_STRATEGIES = ("conservative", "balanced", "aggressive")
SL_STRATEGIES = ("tight", "medium", "wide")

CONFIDENCE_BINS = ((0.55, 0.70, 0.85), ("LOW", "MED", "HIGH", "VHIGH"))
EXPOSURE_BINS = ((0.25, 0.50, 0.75), ("LOW", "MED", "HIGH", "FULL"))
WINRATE_BINS = ((0.40, 0.50, 0.60), ("POOR", "BELOW", "ABOVE", "GOOD"))
VOLATILITY_BINS = ((0.5, 1.0, 2.0, 4.0), ("CALM", "LOW", "MED", "HIGH", "EXTREME"))


def bin_label(value: float, bins: tuple[tuple[float, ...], tuple[str, ...]]) -> str:
    edges, labels = bins
    return labels[bisect_right(edges, value)]


def _number(where: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}: expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(f"{where}: {value!r} is outside [{low}, {high}]")
    return number


@dataclass(frozen=True)
class SizingState:
    market_regime: str  # from the regime detector
    signal_confidence: float  # 0.0-1.0
    portfolio_exposure: float  # share of capital in positions (>= 0; 1.0 = fully invested)
    recent_winrate: float  # last 20 trades, 0.0-1.0
    volatility: float  # ATR as percent of price

    def __post_init__(self) -> None:
        regime = self.market_regime
        if not isinstance(regime, str) or regime.upper() not in REGIMES:
            raise ValueError(f"sizing_state.market_regime: {regime!r} is not one of {list(REGIMES)}")
        object.__setattr__(self, "market_regime", regime.upper())
        for field, low, high in (
            ("signal_confidence", 0.0, 1.0),
            ("portfolio_exposure", 0.0, math.inf),
            ("recent_winrate", 0.0, 1.0),
            ("volatility", 0.0, math.inf),
        ):
            object.__setattr__(self, field, _number(f"sizing_state.{field}", getattr(self, field), low, high))

    @property
    def key(self) -> str:
        return (
            f"{self.market_regime}_conf-{bin_label(self.signal_confidence, CONFIDENCE_BINS)}"
            f"_exp-{bin_label(self.portfolio_exposure, EXPOSURE_BINS)}"
            f"_wr-{bin_label(self.recent_winrate, WINRATE_BINS)}"
            f"_vol-{bin_label(self.volatility, VOLATILITY_BINS)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "sizing_state") -> SizingState:
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
        fields = ("market_regime", "signal_confidence", "portfolio_exposure", "recent_winrate", "volatility")
        missing = [f for f in fields if f not in data]
        if missing:
            raise ValueError(f"{where}: missing {missing}")
        try:
            return cls(*(data[f] for f in fields))
        except ValueError as exc:
            raise ValueError(str(exc).replace("sizing_state", where, 1)) from None


@dataclass(frozen=True)
class SizingAction:
    size_multiplier: float  # one of SIZE_MULTIPLIERS
    leverage: int  # one of LEVERAGES
    tp_strategy: str  # conservative, balanced, aggressive
    sl_strategy: str  # tight, medium, wide

    @property
    def key(self) -> str:
        return f"size-{self.size_multiplier}_lev-{self.leverage}_tp-{self.tp_strategy}_sl-{self.sl_strategy}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_key(cls, key: str, where: str = "sizing_action") -> SizingAction:
        action = _ACTIONS_BY_KEY.get(key) if isinstance(key, str) else None
        if action is None:
            raise ValueError(f"{where}: {key!r} is not a sizing action key (like {SIZING_ACTION_KEYS[0]!r})")
        return action

    @classmethod
    def parse(cls, value: Any, where: str = "sizing_action") -> SizingAction:
        """An action from its key or from an object with the four fields."""
        if isinstance(value, SizingAction):
            return value
        if isinstance(value, Mapping):
            try:
                candidate = cls(
                    float(value["size_multiplier"]),
                    int(value["leverage"]),
                    str(value["tp_strategy"]),
                    str(value["sl_strategy"]),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"{where}: needs size_multiplier, leverage, tp_strategy, sl_strategy ({exc})"
                ) from None
            return cls.from_key(candidate.key, where)
        return cls.from_key(value, where)


SIZING_ACTIONS: tuple[SizingAction, ...] = tuple(
    SizingAction(size, leverage, tp, sl)
    for size, leverage, tp, sl in product(SIZE_MULTIPLIERS, LEVERAGES, TP_STRATEGIES, SL_STRATEGIES)
)
SIZING_ACTION_KEYS: tuple[str, ...] = tuple(a.key for a in SIZING_ACTIONS)
_ACTIONS_BY_KEY = {a.key: a for a in SIZING_ACTIONS}
