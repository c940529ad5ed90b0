"""Topics of the control loop: RL agents, drift, supervisor, regime, the CLM."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from app.core.topics.base import Json, TopicEvent

# --------------------------------------------------------------------------- RL agents


class RLMetaStrategySelected(TopicEvent):
    """The meta strategy agent chose a strategy (epsilon-greedy)."""

    topic = "rl.meta.strategy_selected"
    producers = ("app.rl.meta_strategy",)

    state: Json = Field(description="the `MetaStrategyState`")
    state_key: str = Field(description="its Q-table key")
    strategy: str = Field(description="the strategy chosen (`trend_follow`, ...)")
    q_value: float = Field(description="Q(state, strategy)")
    explored: bool = Field(description="chosen at random (exploration)")
    epsilon: float = Field(description="exploration rate at the choice")
    version: int = Field(description="the agent's live Q-table version")
    decision_id: str | None = Field(None, description="the recorded decision (`rl_decisions`) an outcome names")
    halted: bool = Field(False, description="trading was halted: the choice is not to be traded")


class RLUpdated(TopicEvent):
    """What both agents publish when a closed trade updated their table."""

    state: Json = Field(description="the state the action was taken in")
    action: str = Field(description="the action (strategy, or sizing action key)")
    reward: float = Field(description="the reward computed from the closed trade")
    version: int = Field(description="the live Q-table version updated")
    trade_id: str = Field(description="the trade (each is applied once)")
    q_value: float = Field(description="Q(state, action) after the update")
    epsilon: float = Field(description="exploration rate after the update")


class RLMetaUpdated(RLUpdated):
    """The meta strategy agent learned from a closed trade."""

    topic = "rl.meta.updated"
    producers = ("app.rl.meta_strategy",)


class RLSizingUpdated(RLUpdated):
    """The position sizing agent learned from a closed trade."""

    topic = "rl.sizing.updated"
    producers = ("app.rl.position_sizing",)


class RLReset(TopicEvent):
    """What both agents publish when their table is archived and a fresh one starts."""

    old_version: int = Field(description="the archived Q-table version")
    new_version: int = Field(description="the fresh live version")
    reason: str = Field(description="why (`regime_change:<old>-><new>`, `manual`)")
    epsilon: float = Field(description="exploration rate of the fresh table (`Policy.rl.reset_epsilon`)")


class RLMetaReset(RLReset):
    """The meta strategy agent's table was archived and a fresh one started."""

    topic = "rl.meta.reset"
    producers = ("app.rl.meta_strategy",)
    consumers = ("app.operations.alerts:check_on_event",)


class RLSizingReset(RLReset):
    """The position sizing agent's table was archived and a fresh one started."""

    topic = "rl.sizing.reset"
    producers = ("app.rl.position_sizing",)
    consumers = ("app.operations.alerts:check_on_event",)


class RLSizingDecision(TopicEvent):
    """The position sizing agent chose an action, clamped to the active risk mode."""

    topic = "rl.sizing.decision"
    producers = ("app.rl.position_sizing",)

    state: Json = Field(description="the `SizingState`")
    action: str = Field(description="the action key chosen (what the agent learns on)")
    size_usd: float = Field(description="position size after the clamp")
    leverage: int = Field(description="leverage after the clamp")
    tp_strategy: str = Field(description="take-profit strategy")
    sl_strategy: str = Field(description="stop-loss strategy")
    proposed_size_usd: float = Field(description="size before the clamp")
    proposed_leverage: int = Field(description="leverage before the clamp")
    allowed: bool = Field(description="false: no new position may be opened")
    clamped: bool = Field(description="the risk limits changed the proposal")
    clamp_reasons: list[str] = Field(description="which limits applied")
    risk_mode: str = Field(description="the active risk mode")
    state_key: str = Field(description="the state's Q-table key")
    version: int = Field(description="the live Q-table version")
    q_value: float = Field(description="Q(state, action)")
    explored: bool = Field(description="chosen at random (exploration)")
    epsilon: float = Field(description="exploration rate at the choice")
    decision_id: str | None = Field(None, description="the recorded decision (`rl_decisions`) an outcome names")
    halted: bool = Field(False, description="trading was halted: size 0, not allowed")


# --------------------------------------------------------------------------- drift, supervisor, regime


class DriftDetected(TopicEvent):
    """One drifted feature (or prediction statistic) of a drift check; a `drift_events` row each.

    A check publishes one event per finding; its first is the lead (`check_lead_event_id`),
    on which the CLM and the alerts act once. Further keys per drift type (`ks_statistic`,
    `psi`, `p_adjusted`, ...) follow the listed ones."""

    model_config = ConfigDict(extra="allow")  # the finding's details, which differ per drift type

    topic = "drift.detected"
    producers = ("app.drift_detector.service",)
    consumers = ("app.clm.manager:on_drift_detected", "app.operations.alerts:check_on_event")

    drift_type: str = Field(description="`feature`, `prediction`, `performance`, ...")
    feature: str = Field(description="the feature or statistic that drifted")
    p_value: float | None = Field(description="the test's p-value (FDR-controlled)")
    severity: str = Field(description="LOW | MEDIUM | HIGH | CRITICAL, the check's")
    model_type: str | None = Field(None, description="the model type the reference belongs to")
    model_id: str | None = Field(None, description="the model the reference belongs to")
    check_id: str | None = Field(None, description="the check (shared by its events)")
    check_lead_event_id: int | None = Field(None, description="the check's first `drift_events` id")
    drift_event_id: int | None = Field(None, description="this finding's `drift_events` id")
    threshold: float | None = Field(None, description="the policy's KS threshold")
    check_event_ids: list[int] | None = Field(None, description="on the lead event only: every event of the check")


class PerformanceDegraded(TopicEvent):
    """The supervisor found an ACTIVE model unhealthy (winrate, calibration, bias, latency)."""

    topic = "model.performance.degraded"
    producers = ("app.model_supervisor.service",)
    consumers = ("app.clm.manager:on_performance_degraded", "app.operations.alerts:check_on_event")

    model_id: str = Field(description="the ACTIVE model checked")
    model_type: str | None = Field(description="its type")
    metrics: Json = Field(description="its `ModelHealth` summary")
    recommendation: str = Field(description="the health status (DEGRADED, CRITICAL, ...)")
    reasons: list[str] = Field(description="which thresholds it missed")


class RegimeChanged(TopicEvent):
    """A symbol's market regime switched (the first classification is stored, not announced)."""

    topic = "regime.changed"
    producers = ("app.regime_detector.detector",)
    consumers = ("app.clm.manager:on_regime_changed",)

    symbol: str = Field(description="the symbol, or the market index")
    old: str = Field(description="the previous regime")
    new: str = Field(description="the new regime")
    at: int = Field(description="open time (ms) of the candle that switched it")
    efficiency_ratio: float = Field(description="the trend measure at the switch")
    volatility_ratio: float = Field(description="the volatility measure at the switch")


# --------------------------------------------------------------------------- CLM


class RetrainingStarted(TopicEvent):
    """A retraining job (or the RL maintenance job) started."""

    topic = "clm.retraining.started"
    producers = ("app.retraining.orchestrator",)
    consumers = ("app.operations.alerts:check_on_event",)

    job_id: str = Field(description="`RTN-...`")
    trigger_reason: str = Field(description="why (`manual`, `scheduled`, `drift_high`, `performance_degradation`)")
    job_type: str = Field(description="full | partial | rl_maintenance")
    reason: str | None = Field(None, description="as `trigger_reason`; null for the RL maintenance job")
    model_types: list[str] | None = Field(None, description="the model types trained (none for RL maintenance)")


class RetrainingCompleted(TopicEvent):
    """A retraining job ended: completed, partial, failed or cancelled."""

    topic = "clm.retraining.completed"
    producers = ("app.retraining.closing",)
    consumers = ("app.operations.alerts:check_on_event",)

    job_id: str = Field(description="`RTN-...`")
    models_trained: dict[str, str] = Field(description="model type -> id of the model it trained")
    duration_sec: float = Field(description="from start to end of the job")
    job_type: str = Field(description="full | partial | rl_maintenance")
    status: str = Field(description="completed | partial | failed | cancelled")
    duration_seconds: int = Field(description="as `duration_sec`, whole seconds (the job row's)")
    models: dict[str, Json] = Field(description="per model type: status, model_id, registry_status, error")
    error: str | None = Field(description="what failed, if anything")


class RetrainingSuppressed(TopicEvent):
    """The storm guard refused a trigger: a job for these model types runs or is in cooldown
    (`blocked_by` names it), or a drift-started retraining waits for rows of the new market
    (`blocked_by` empty, the reason says until when)."""

    topic = "clm.retraining.suppressed"
    producers = ("app.clm.guard",)
    consumers = ("app.operations.alerts:check_on_event",)

    reason: str = Field(description="the trigger's reason")
    model_types: list[str] = Field(description="the model types it asked for")
    blocked_by: dict[str, str] = Field(description="model type -> the job blocking it")
    trigger: Json = Field(description="the triggering event (`event_id`, `topic`, severity, ...)")


class ClmRLReset(TopicEvent):
    """The CLM reset both RL agents after a regime change (`rl.*.reset` report each)."""

    topic = "clm.rl.reset"
    producers = ("app.clm.manager",)

    reason: str = Field(description="`regime_change:<old>-><new>`")
    agents: dict[str, dict[str, int] | None] = Field(
        description="`meta`, `sizing` -> {old_version, new_version}, null when the agent was not reset"
    )


class TradingHalted(TopicEvent):
    """CRITICAL drift halted trading (the `trading_halted` flag); an operator resumes it, or the
    policy's `clm_config.trading_halt` (a model retrained after the halt promoted, or its age)."""

    topic = "clm.trading.halted"
    producers = ("app.clm.halt",)

    reason: str = Field(description="why")


class TradingResumed(TopicEvent):
    """Trading resumed: by an operator, or by the policy's `clm_config.trading_halt` (reason `auto: ...`)."""

    topic = "clm.trading.resumed"
    producers = ("app.clm.halt",)

    reason: str = Field(description="who or why (`auto: ...` when the policy lifted the halt)")
