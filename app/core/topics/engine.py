"""Topics at the trading engine's edge and of operations: signals, closed trades, alerts, ping."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict, Field

from app.core.topics.base import Json, TopicEvent

# --------------------------------------------------------------------------- trading engine


class SignalGenerated(TopicEvent):
    """A prediction served (`POST /api/predictions`), with its shadow prediction if any.

    Written in the prediction's own statement; stored as delivered when nothing subscribes
    (`record_only`: 200 a second)."""

    topic = "ai.signal.generated"
    producers = ("app.prediction.service",)

    symbol: str = Field(description="the symbol predicted")
    model_id: str = Field(description="the ACTIVE model that answered")
    model_type: str = Field(description="its type")
    predicted_return: float = Field(description="predicted log return over the horizon")
    direction: int = Field(description="-1, 0 or 1")
    confidence: float = Field(description="calibrated P(direction right)")
    timestamp: datetime = Field(description="close time of the last candle used")
    horizon_end: datetime = Field(description="when the predicted return is realised")
    latency_ms: float = Field(description="time to answer")
    prediction_id: int = Field(description="the ACTIVE model's `prediction_logs` id")
    shadow: Json | None = Field(description="the SHADOW model's prediction (`model_id`, ...)")
    shadow_test_id: int | None = Field(description="the shadow pair's `shadow_test_results` id")
    abstained: bool = Field(
        False,
        description="an explicit abstention: direction 0 because the calibrated confidence is under the "
        "policy's `training.min_confidence` (the confidence is still reported)",
    )
    abstain_reason: str | None = Field(
        None, description="why it abstained (`confidence 0.47 below min_confidence 0.50`); null when it did not"
    )


class TradeClosed(TopicEvent):
    """A closed trade of the trading engine (`POST /api/outcomes`, the simulation's engine).

    Stored as sent (`sparse`): only the keys the engine gave. The RL agents read the
    state/action pairs (`app/rl/outcome.py`); the shadow tester and the supervisor close the
    predictions and shadow pairs it names."""

    sparse = True
    topic = "execution.trade.closed"
    producers = ("app.rl.decisions",)  # POST /api/outcomes (the simulation's engine calls it too)
    consumers = (
        "app.rl.meta_strategy:on_trade_closed",
        "app.rl.position_sizing:on_trade_closed",
        "app.shadow_tester.service:on_trade_closed",
        "app.model_supervisor.service:on_trade_closed",
    )

    trade_id: str = Field(description="unique per trade; each consumer applies a trade once")
    pnl_pct: float = Field(description="realised PnL in percent (3.0 = +3 %)")
    duration_hours: float = Field(description="time in the trade")
    symbol: str | None = Field(None, description="the symbol traded")
    side: str | None = Field(None, description="LONG | SHORT")
    realized_return: float | None = Field(None, description="market log return over the trade")
    max_drawdown_pct: float = Field(0.0, description="worst adverse excursion in percent")
    hit_tp: bool = Field(False, description="closed at take profit")
    hit_sl: bool = Field(False, description="closed at stop loss")
    winrate: float | None = Field(None, description="recent winrate of the engine")
    opened_at: datetime | None = Field(None, description="when the trade opened")
    closed_at: datetime | None = Field(None, description="when it closed")
    prediction_id: int | None = Field(None, description="the served prediction the trade followed")
    prediction_ids: list[int] | None = Field(None, description="several served predictions (the simulation's)")
    shadow_test_id: int | None = Field(None, description="the shadow pair the trade closes")
    shadow_test_ids: list[int] | None = Field(None, description="several shadow pairs (the simulation's)")
    meta_state: Json | None = Field(None, description="the `MetaStrategyState` the strategy was chosen in")
    meta_action: str | None = Field(None, description="the strategy used")
    meta_next_state: Json | None = Field(None, description="state after the trade (absent: episode ends)")
    sizing_state: Json | None = Field(None, description="the `SizingState` the size was chosen in")
    sizing_action: str | Json | None = Field(None, description="the sizing action key, or its 4 fields")
    sizing_next_state: Json | None = Field(None, description="as `meta_next_state`")
    meta_decision_id: str | None = Field(None, description="the meta strategy decision applied (its state and action)")
    sizing_decision_id: str | None = Field(None, description="the sizing decision applied (its state and action)")
    entry_price: float | None = Field(None, description="the simulation's: entry price")
    exit_price: float | None = Field(None, description="the simulation's: exit price")
    size_usd: float | None = Field(None, description="the simulation's: position size")
    leverage: int | None = Field(None, description="the simulation's: leverage")
    strategy: str | None = Field(None, description="the simulation's: strategy traded")
    exit_reason: str | None = Field(None, description="the simulation's: tp | sl | horizon")


# --------------------------------------------------------------------------- operations


class _AlertRaised(TopicEvent):
    key: str = Field(description="identifies one occurrence (raised once)")
    name: str = Field(description="the alert (`drift_critical`, `retraining_failed`, ...)")
    severity: str = Field(description="critical | warning")
    message: str = Field(description="for a person")
    since: datetime | None = Field(description="when the condition began")


class AlertCritical(_AlertRaised):
    """A critical alert condition began (`app/alerts.py`); the webhook gets it."""

    topic = "alert.critical"
    producers = ("app.operations.alerts",)
    consumers = ("app.operations.alerts:deliver_webhook",)


class AlertWarning(_AlertRaised):
    """A warning alert condition began; the webhook gets it."""

    topic = "alert.warning"
    producers = ("app.operations.alerts",)
    consumers = ("app.operations.alerts:deliver_webhook",)


class SystemPing(TopicEvent):
    """Proves that events travel from a publisher to a handler (operators, tests): any keys,
    stored by the handler in the `last_ping` flag."""

    model_config = ConfigDict(extra="allow")

    topic = "system.ping"
    consumers = ("app.core.system:record_ping",)
