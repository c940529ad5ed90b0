"""Every event topic as a type: one pydantic model per topic, its fields the payload.

Producers publish an instance (`bus.publish(session, ModelPromoted(...))`); the bus stores
`event.payload()` (JSON mode) in the `events` row. Handlers keep their `(container, event)`
signature and read the payload through the type: `DriftDetected.from_event(event)`.

Each class names its `topic` (the specification's string), the modules that publish it
(`producers`, checked against the source by `tests/unit/test_topics.py`) and the handlers
that consume it (`consumers`, as `app/handlers.py` lists them; checked there too). The
catalogue `docs/events.md` is generated from this module:

    python -m app.core.topics > docs/events.md

Keys the specification's event tables list are required fields, beside the keys the code
has sent since (the dashboard, the alerts and the tests read those).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Self, get_args

from pydantic import BaseModel, ConfigDict, Field

Json = dict[str, Any]


def _jsonable(value: Any) -> Any:
    """Fallback of the JSON dump: numpy scalars become Python's; anything else is refused."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return item()
    raise TypeError(f"an event payload cannot hold a {type(value).__name__}")


def _finite(value: Any) -> Any:
    """NaN and infinities become null: PostgreSQL's JSONB refuses them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class TopicEvent(BaseModel):
    """The base of every event type: a topic, its producers and consumers, a typed payload."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: ClassVar[str]
    producers: ClassVar[tuple[str, ...]] = ()  # modules that publish it (an RL agent's module, through app.rl.agent)
    consumers: ClassVar[tuple[str, ...]] = ()  # handlers ("module:function", as in app/handlers.py)
    # True: the payload holds only the keys the producer set (a message relayed from outside,
    # stored as it was sent); False: every field, null where unset.
    sparse: ClassVar[bool] = False

    def payload(self) -> Json:
        """The stored payload: JSON values only (numpy scalars unwrapped, non-finite floats null)."""
        dumped = self.model_dump(mode="json", exclude_unset=self.sparse, fallback=_jsonable)
        return _finite(dumped)  # type: ignore[no-any-return]

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Self:
        """The typed payload of a delivered event (the dict handlers receive, with `payload`)."""
        topic = event.get("topic")
        if topic is not None and topic != cls.topic:
            raise ValueError(f"{cls.__name__} reads {cls.topic!r} events, not {topic!r}")
        return cls.model_validate(event["payload"])


# --------------------------------------------------------------------------- data pipeline


class DataFetchStarted(TopicEvent):
    """Candles are about to be fetched for a range (only its missing parts are requested)."""

    topic = "data.fetch.started"
    producers = ("app.data_pipeline.fetcher",)

    exchange: str = Field(description="ccxt exchange id")
    symbols: list[str] = Field(description="symbols fetched (`BTC/USDT`)")
    timeframe: str = Field(description="candle interval (`5m`)")
    start_date: datetime = Field(description="first candle's open time (UTC)")
    end_date: datetime = Field(description="end of the range, exclusive (UTC)")
    start_ms: int = Field(description="`start_date` in ms since the epoch")
    end_ms: int = Field(description="`end_date` in ms since the epoch")
    missing_ranges: dict[str, list[list[int]]] = Field(
        description="per symbol, the [start_ms, end_ms) ranges not yet stored (the only ones requested)"
    )


class DataFetchCompleted(TopicEvent):
    """The range is stored; `rows` candles were read back from the store."""

    topic = "data.fetch.completed"
    producers = ("app.data_pipeline.fetcher",)

    exchange: str = Field(description="ccxt exchange id")
    symbols: list[str] = Field(description="symbols fetched")
    timeframe: str = Field(description="candle interval")
    rows: int = Field(description="candles of the range in the store now, all symbols")
    features: list[str] = Field(
        description="the value columns of each candle (features proper are engineered later, by the dataset builder)"
    )
    rows_fetched: int = Field(description="candles the exchange sent in this call")
    requests: int = Field(description="exchange requests made")
    duration_sec: float = Field(description="wall time of the fetch")


# --------------------------------------------------------------------------- model training


class ModelTrainingStarted(TopicEvent):
    """A model type starts training on a built dataset."""

    topic = "model.training.started"
    producers = ("app.model_training.service",)

    model_type: str = Field(description="`xgboost`, `lightgbm`, `nhits`, ...")
    job_id: str | None = Field(description="the retraining job (null: trained outside a job)")
    dataset_id: str = Field(description="the dataset trained on")
    run_id: str = Field(description="this training run (names the artifact directory)")


class ModelTrainingCompleted(ModelTrainingStarted):
    """A model is trained, evaluated and stored (not yet registered)."""

    topic = "model.training.completed"

    model_id: str | None = Field(
        None,
        description="the registry's id; null: training ends before registration names the model "
        "(`model.registered` carries it, with the same `job_id`)",
    )
    duration_sec: float = Field(description="wall time of training, evaluation and cross-validation")
    file_path: str = Field(description="the artifact manifest, relative to the artifact store")
    sha256: str = Field(description="of the manifest, which lists every file's sha256")
    metrics: dict[str, float | None] = Field(description="headline test metrics (directional_accuracy, rmse, sharpe)")


class ModelTrainingFailed(ModelTrainingStarted):
    """Training of a model type raised; the job records the error."""

    topic = "model.training.failed"

    error: str = Field(description="`ExceptionType: message`")


# --------------------------------------------------------------------------- model registry


class _ModelStatusEvent(TopicEvent):
    model_id: str = Field(description="`<model_type>_v<version>`")
    model_type: str = Field(description="the model's type")
    version: str = Field(description="version within its type")
    status: str = Field(description="status after the change (TRAINING, SHADOW, ACTIVE, RETIRED, REJECTED)")
    job_id: str | None = Field(description="the retraining job that trained it")
    reason: str | None = Field(description="why the status changed")


class ModelRegistered(_ModelStatusEvent):
    """A trained model is live: ACTIVE (first of its type) or SHADOW (to be shadow tested)."""

    topic = "model.registered"
    producers = ("app.model_registry.service",)
    consumers = ("app.shadow_tester.service:on_model_registered",)


class _Promotion(_ModelStatusEvent):
    previous_model_id: str | None = Field(description="the ACTIVE model it replaced")
    old_status: str = Field(description="status before the promotion (SHADOW, or RETIRED on a rollback)")
    new_status: str = Field(description="ACTIVE")


class ModelPromoted(_Promotion):
    """A model became the ACTIVE one of its type; the previous ACTIVE was retired."""

    topic = "model.promoted"
    producers = ("app.model_registry.service",)
    consumers = ("app.clm.manager:on_model_promoted", "app.prediction.service:on_model_promoted")


class ModelRetired(_ModelStatusEvent):
    """A model left service: RETIRED (replaced, superseded, by the operator) or REJECTED."""

    topic = "model.retired"
    producers = ("app.model_registry.service",)


class ClmModelPromoted(_Promotion):
    """The CLM's record of a promotion: the `model.promoted` payload, re-published under `clm.*`."""

    topic = "clm.model.promoted"
    producers = ("app.clm.manager",)


# --------------------------------------------------------------------------- shadow tester


class ShadowTestingStarted(TopicEvent):
    """A SHADOW model's test against the ACTIVE one begins."""

    topic = "shadow.testing.started"
    producers = ("app.shadow_tester.service",)

    model_id: str = Field(description="the SHADOW model (as `shadow_model_id`)")
    shadow_model_id: str = Field(description="the SHADOW model")
    active_model_id: str | None = Field(description="the ACTIVE model it is compared with")
    model_type: str = Field(description="their type")
    target_samples: int = Field(description="paired outcomes before the first decision (as `min_samples`)")
    min_samples: int = Field(description="the policy's `auto_promote_threshold.min_samples`")


class ShadowPromotionRecommended(TopicEvent):
    """The shadow test's decision is PROMOTE. It is published in the transaction that carries the
    decision out (`app.shadow_tester.promotion.carry_out`: promoted there when auto-promotion is
    on); it reports, no handler promotes."""

    topic = "shadow.promotion.recommended"
    producers = ("app.shadow_tester.promotion",)
    consumers = ("app.operations.alerts:check_on_event",)

    model_id: str = Field(description="the SHADOW model recommended")
    shadow_model_id: str = Field(description="the same")
    model_type: str = Field(description="its type")
    auto_promote: bool = Field(description="whether the policy promotes without review")
    metrics_comparison: Json = Field(
        description="`active` and `shadow` metrics, `improvement_pct`, `pnl_difference`, `p_value_better`"
    )
    evaluation: Json = Field(description="the whole `ShadowEvaluationResult`")


class ShadowPromoted(TopicEvent):
    """The shadow test promoted its model (after `model.promoted`)."""

    topic = "shadow.promoted"
    producers = ("app.shadow_tester.promotion",)

    model_id: str = Field(description="the promoted model")
    model_type: str = Field(description="its type")
    previous_model_id: str | None = Field(description="the ACTIVE model it replaced")
    final_metrics: Json = Field(description="the shadow's metrics at the decision")
    evaluation: Json = Field(description="the whole `ShadowEvaluationResult`")


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
    """The storm guard refused a trigger: a job for these model types runs or is in cooldown."""

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
    """CRITICAL drift halted trading (the `trading_halted` flag); an operator resumes it."""

    topic = "clm.trading.halted"
    producers = ("app.clm.manager",)

    reason: str = Field(description="why")


class TradingResumed(TopicEvent):
    """An operator resumed trading."""

    topic = "clm.trading.resumed"
    producers = ("app.clm.manager",)

    reason: str = Field(description="who or why")


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


class TradeClosed(TopicEvent):
    """A closed trade of the trading engine (`POST /api/outcomes`, the simulation's engine).

    Stored as sent (`sparse`): only the keys the engine gave. The RL agents read the
    state/action pairs (`app/rl/outcome.py`); the shadow tester and the supervisor close the
    predictions and shadow pairs it names."""

    sparse = True
    topic = "execution.trade.closed"
    producers = ("app.api.outcomes", "app.simulation.engine")
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


# --------------------------------------------------------------------------- the catalogue

EVENT_TYPES: tuple[type[TopicEvent], ...] = (
    DataFetchStarted,
    DataFetchCompleted,
    ModelTrainingStarted,
    ModelTrainingCompleted,
    ModelTrainingFailed,
    ModelRegistered,
    ModelPromoted,
    ModelRetired,
    ShadowTestingStarted,
    ShadowPromotionRecommended,
    ShadowPromoted,
    RLMetaStrategySelected,
    RLMetaUpdated,
    RLMetaReset,
    RLSizingDecision,
    RLSizingUpdated,
    RLSizingReset,
    DriftDetected,
    PerformanceDegraded,
    RegimeChanged,
    RetrainingStarted,
    RetrainingCompleted,
    RetrainingSuppressed,
    ClmModelPromoted,
    ClmRLReset,
    TradingHalted,
    TradingResumed,
    SignalGenerated,
    TradeClosed,
    AlertCritical,
    AlertWarning,
    SystemPing,
)
TOPICS: dict[str, type[TopicEvent]] = {cls.topic: cls for cls in EVENT_TYPES}

# Topics of the specification that are deliberately not events, and why.
REPLACED_TOPICS: dict[str, str] = {
    "ai.prediction.logged": (
        "replaced by the `prediction_logs` table. Every served prediction (ACTIVE and SHADOW) is a "
        "row written in the prediction's own statement, at 200 predictions a second; the drift "
        "detector and the model supervisor read those rows in windows (sampled when large) instead "
        "of handling one event per prediction, which would double the writes and make each "
        "consumer keep its own copy. The served prediction is also announced as "
        "`ai.signal.generated`, stored without delivery unless a handler subscribes."
    ),
}


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and not get_args(annotation):
        return annotation.__name__
    return repr(annotation).replace("typing.", "").replace("datetime.datetime", "datetime").replace("NoneType", "None")


def catalogue() -> str:
    """`docs/events.md`: every topic, its producers, consumers and payload fields."""
    lines = [
        "# Event catalogue",
        "",
        "<!-- Generated from app/core/topics.py by `python -m app.core.topics > docs/events.md`; do not edit. -->",
        "",
        "Every event is a row of the `events` table (the outbox), published in the transaction of the",
        "change it reports and delivered to the handlers of `app/handlers.py` at least once. Each topic",
        "is one type in `app/core/topics.py`; its payload is that type's fields (JSON).",
        "",
        "| topic | type | producers | consumers |",
        "|---|---|---|---|",
    ]
    for cls in EVENT_TYPES:
        producers = ", ".join(f"`{p}`" for p in cls.producers) or "operators, tests"
        consumers = ", ".join(f"`{c}`" for c in cls.consumers) or "(stored; read by the API and dashboard)"
        lines.append(f"| `{cls.topic}` | `{cls.__name__}` | {producers} | {consumers} |")
    lines += ["", "## Replaced topics", ""]
    for topic, reason in REPLACED_TOPICS.items():
        lines.append(f"- `{topic}`: {reason}")
    for cls in EVENT_TYPES:
        doc = " ".join((cls.__doc__ or "").split())
        lines += ["", f"## `{cls.topic}` ({cls.__name__})", "", doc, ""]
        if cls.sparse:
            lines += ["Stored as sent: only the keys the producer set.", ""]
        if cls.model_config.get("extra") == "allow":
            lines += ["Further keys beside these are allowed and kept.", ""]
        if not cls.model_fields:
            lines.append("No fixed fields.")
            continue
        lines += ["| field | type | required | description |", "|---|---|---|---|"]
        for name, field in cls.model_fields.items():
            required = "yes" if field.is_required() else "no"
            lines.append(f"| `{name}` | `{_type_name(field.annotation)}` | {required} | {field.description or ''} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(catalogue())
