"""The safety clamp every sizing decision passes (specification: rl_position_sizing).

The agent proposes a size (the policy's base position times its size multiplier) and a
leverage; the active risk mode caps the size at `max_risk_pct_per_trade x balance`, the
leverage at `max_leverage`, and refuses a new position when `max_positions` are open.
The decision keeps what was proposed beside what is allowed and says why it differs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from app.core.system import TradingHalt
from app.rl.sizing_space import SizingAction


@dataclass(frozen=True)
class RiskLimits:
    mode: str
    max_risk_pct_per_trade: float  # fraction of balance, as in the policy
    max_leverage: int
    max_positions: int


@dataclass(frozen=True)
class SizingDecision:
    action: SizingAction  # what the agent chose (and learns on)
    size_usd: float  # after the clamp
    leverage: int  # after the clamp
    tp_strategy: str
    sl_strategy: str
    proposed_size_usd: float
    proposed_leverage: int
    allowed: bool  # False: no new position may be opened
    clamped: bool
    clamp_reasons: tuple[str, ...] = field(default_factory=tuple)
    risk_mode: str = ""
    state_key: str = ""
    version: int = 0
    q_value: float = 0.0
    explored: bool = False
    epsilon: float = 0.0  # the agent's exploration rate at the choice
    decision_id: str = ""  # the recorded decision (`rl_decisions`) an outcome names
    halted: bool = False  # trading was halted: size 0, not allowed, the halt in clamp_reasons
    halt: TradingHalt | None = None  # the halt's reason and since (not part of the event)

    @property
    def action_key(self) -> str:
        return self.action.key

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["action"] = self.action.key
        data["clamp_reasons"] = list(self.clamp_reasons)
        data.pop("halt")
        return data


def halted_decision(decision: SizingDecision, halt: TradingHalt) -> SizingDecision:
    """While trading is halted no position opens, whatever the agent chose."""
    since = halt.since.isoformat() if halt.since else "unknown"
    reason = halt.reason
    return replace(
        decision,
        halt=halt,
        size_usd=0.0,
        allowed=False,
        clamped=True,
        halted=True,
        clamp_reasons=(*decision.clamp_reasons, f"trading_halted: {reason} (since {since})"),
    )


def clamp_sizing(
    action: SizingAction,
    *,
    base_position_usd: float,
    balance_usd: float,
    open_positions: int,
    limits: RiskLimits,
) -> SizingDecision:
    """Apply the risk mode's limits to `action`; the result never exceeds any of them."""
    if not math.isfinite(balance_usd) or balance_usd < 0:
        raise ValueError(f"balance_usd: {balance_usd!r} must be a finite number >= 0")
    if isinstance(open_positions, bool) or not isinstance(open_positions, int) or open_positions < 0:
        raise ValueError(f"open_positions: {open_positions!r} must be an integer >= 0")
    proposed_size = base_position_usd * action.size_multiplier
    max_size = limits.max_risk_pct_per_trade * balance_usd
    size, leverage, reasons = proposed_size, action.leverage, []
    if open_positions >= limits.max_positions:
        size = 0.0
        reasons.append(f"max_positions: {open_positions} open, mode {limits.mode!r} allows {limits.max_positions}")
    elif size > max_size:
        size = max_size
        reasons.append(
            f"max_risk_pct_per_trade: {proposed_size:.2f} USD > {limits.max_risk_pct_per_trade:g} x "
            f"{balance_usd:.2f} USD balance = {max_size:.2f} USD"
        )
    if leverage > limits.max_leverage:
        leverage = limits.max_leverage
        reasons.append(f"max_leverage: {action.leverage} > {limits.max_leverage} in mode {limits.mode!r}")
    return SizingDecision(
        action=action,
        size_usd=size,
        leverage=leverage,
        tp_strategy=action.tp_strategy,
        sl_strategy=action.sl_strategy,
        proposed_size_usd=proposed_size,
        proposed_leverage=action.leverage,
        allowed=size > 0,
        clamped=bool(reasons),
        clamp_reasons=tuple(reasons),
        risk_mode=limits.mode,
    )
