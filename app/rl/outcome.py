"""The `execution.trade.closed` payload, as the RL agents read it.

Keys (the trading engine sends them; both agents update from one event):

| key | type | meaning |
|---|---|---|
| `trade_id` | str | unique per trade; an agent applies a trade once, however often it arrives |
| `pnl_pct` | float | realised PnL in percent |
| `duration_hours` | float >= 0 | time in the trade |
| `max_drawdown_pct` | float | worst adverse excursion in percent (sign ignored) |
| `hit_tp`, `hit_sl` | bool | closed at take profit / stop loss (default false) |
| `winrate` | float 0..1, optional | recent winrate (meta reward); default `sizing_state.recent_winrate`, else 0.5 |
| `meta_state` | object, optional | the `MetaStrategyState` the strategy was chosen in |
| `meta_action` | str, optional | the strategy used (`trend_follow`, ...) |
| `meta_next_state` | object, optional | state after the trade; absent: the trade ends its episode |
| `sizing_state` | object, optional | the `SizingState` the size was chosen in |
| `sizing_action` | str or object, optional | action key (`size-1.0_lev-5_tp-balanced_sl-medium`) or its 4 fields |
| `sizing_next_state` | object, optional | as `meta_next_state` |

An agent whose state/action pair is absent ignores the event (it does not even check the
rest, so trades published for other consumers never fail here); a malformed one is refused
with an `OutcomeError` (a `ValueError`) naming the key. The API checks each outcome with the
same `from_payload` before it publishes one, so a trade the agents cannot apply is a 422.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.rl.meta_space import MetaStrategyState, StrategyType, parse_strategy
from app.rl.sizing_space import SizingAction, SizingState

_WHERE = "execution.trade.closed"


class OutcomeError(ValueError):
    """A trade outcome the agents cannot apply; `field` names the key (`meta_state.market_regime`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _float(payload: Mapping[str, Any], key: str, default: float | None = None) -> float:
    value = payload.get(key, default)
    if value is None:
        raise OutcomeError(key, f"{_WHERE}: missing {key!r}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise OutcomeError(key, f"{_WHERE}: {key!r} = {value!r} is not a finite number")
    return float(value)


@dataclass(frozen=True)
class TradeOutcome:
    trade_id: str
    pnl_pct: float
    duration_hours: float
    max_drawdown_pct: float
    hit_tp: bool
    hit_sl: bool
    winrate: float
    meta_state: MetaStrategyState | None
    meta_action: StrategyType | None
    meta_next_state: MetaStrategyState | None
    sizing_state: SizingState | None
    sizing_action: SizingAction | None
    sizing_next_state: SizingState | None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> TradeOutcome:
        if not isinstance(payload, Mapping):
            raise OutcomeError("(body)", f"{_WHERE}: payload must be an object, got {type(payload).__name__}")
        trade_id = payload.get("trade_id")
        if trade_id is None or str(trade_id).strip() == "":
            raise OutcomeError("trade_id", f"{_WHERE}: missing 'trade_id'")
        duration = _float(payload, "duration_hours")
        if duration < 0:
            raise OutcomeError("duration_hours", f"{_WHERE}: 'duration_hours' = {duration} is negative")
        where = _WHERE
        meta_state = _optional(payload, "meta_state", lambda v, w: MetaStrategyState.from_dict(v, w))
        sizing_state = _optional(payload, "sizing_state", lambda v, w: SizingState.from_dict(v, w))
        meta_action = _optional(payload, "meta_action", parse_strategy)
        sizing_action = _optional(payload, "sizing_action", SizingAction.parse)
        if (meta_state is None) != (meta_action is None):
            absent = "meta_action" if meta_action is None else "meta_state"
            raise OutcomeError(absent, f"{where}: 'meta_state' and 'meta_action' come together")
        if (sizing_state is None) != (sizing_action is None):
            absent = "sizing_action" if sizing_action is None else "sizing_state"
            raise OutcomeError(absent, f"{where}: 'sizing_state' and 'sizing_action' come together")
        default_winrate = sizing_state.recent_winrate if sizing_state is not None else 0.5
        winrate = _float(payload, "winrate", default_winrate)
        if not 0 <= winrate <= 1:
            raise OutcomeError("winrate", f"{where}: 'winrate' = {winrate} is outside [0, 1]")
        return cls(
            trade_id=str(trade_id),
            pnl_pct=_float(payload, "pnl_pct"),
            duration_hours=duration,
            max_drawdown_pct=_float(payload, "max_drawdown_pct", 0.0),
            hit_tp=bool(payload.get("hit_tp", False)),
            hit_sl=bool(payload.get("hit_sl", False)),
            winrate=winrate,
            meta_state=meta_state,
            meta_action=meta_action,
            meta_next_state=_optional(payload, "meta_next_state", lambda v, w: MetaStrategyState.from_dict(v, w)),
            sizing_state=sizing_state,
            sizing_action=sizing_action,
            sizing_next_state=_optional(payload, "sizing_next_state", lambda v, w: SizingState.from_dict(v, w)),
        )


def carries(payload: Mapping[str, Any], prefix: str) -> bool:
    """Whether the trade carries a part for an agent (`meta` or `sizing`): other trades are not its business."""
    return isinstance(payload, Mapping) and any(payload.get(f"{prefix}_{k}") is not None for k in ("state", "action"))


def _optional(payload: Mapping[str, Any], key: str, parse: Any) -> Any:
    value = payload.get(key)
    if value is None:
        return None
    try:
        return parse(value, f"{_WHERE}.{key}")
    except ValueError as exc:
        # The parsers name the nested key first: `execution.trade.closed.meta_state.market_regime: ...`
        named = str(exc).split(":", 1)[0].removeprefix(f"{_WHERE}.")
        raise OutcomeError(named if named.startswith(key) else key, str(exc)) from None
