"""Request and response bodies of the API (pydantic): validation and the OpenAPI schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from app.model_registry.records import ModelRecord
from app.retraining.jobs import JobRecord

ID_PATTERN = r"^[A-Za-z0-9_.:\-]+$"
# A table's row id (BIGINT; SQLite's INTEGER): no row has a larger one, and a larger number would not
# reach the database as a lookup (SQLite refuses it with an OverflowError, a 500, not an unknown id).
ROW_ID_MAX = 2**63 - 1
RowId = Annotated[int, Field(ge=1, le=ROW_ID_MAX)]
JobStatus = Literal["pending", "running", "completed", "partial", "failed", "cancelled"]
ModelStatus = Literal["TRAINING", "SHADOW", "ACTIVE", "RETIRED", "REJECTED"]
Severity = Literal["low", "medium", "high", "critical"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _with_utc_offset(value: datetime) -> datetime:
    """Stored times are naive UTC; an answer says so ("...Z"), as OpenAPI's `date-time` requires."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_with_utc_offset)]

# Dates a dataset can span: candle times are milliseconds since the epoch, and a date near
# year 1 or 9999 overflowed the lookback arithmetic (OverflowError, a 500).
EARLIEST_DATA = datetime(1970, 1, 1)
LATEST_DATA = datetime(2200, 1, 1)


def naive_utc(value: datetime) -> datetime:
    """`value` in UTC without its offset (the stored form); a naive value is already UTC."""
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


class ErrorBody(BaseModel):
    error: str
    status: int
    details: Any | None = None


# --------------------------------------------------------------------------- jobs


class DatasetOverrides(_In):
    """Which data a job trains on, instead of the policy's (never a file path: `files` is not accepted)."""

    source: Literal["store", "exchange", "synthetic"] | None = None
    symbols: list[Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9]+/[A-Za-z0-9]+$")]] | None = (
        Field(None, min_length=1, max_length=50)
    )
    timeframe: str | None = Field(None, pattern=r"^[0-9]{1,3}[mhdw]$")
    lookback_days: float | None = Field(None, gt=0, le=3650)
    start: datetime | None = None
    end: datetime | None = None
    seed: int | None = Field(None, ge=0, le=2**31)

    @field_validator("start", "end")
    @classmethod
    def _utc_within_range(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        # The year first: converting a time of year 1 or 9999 to UTC can itself overflow.
        if not EARLIEST_DATA.year <= value.year < LATEST_DATA.year or not (
            EARLIEST_DATA <= naive_utc(value) < LATEST_DATA
        ):
            raise ValueError(f"must be between {EARLIEST_DATA:%Y-%m-%d} and {LATEST_DATA:%Y-%m-%d} (UTC)")
        return naive_utc(value)


class RetrainingRequest(_In):
    kind: Literal["full", "partial"] = "full"
    model_types: list[Annotated[str, Field(min_length=1, max_length=50)]] = Field(
        default_factory=list, max_length=16, description="partial: which model types (full: the policy's)"
    )
    reason: str = Field("manual", min_length=1, max_length=100)
    data: DatasetOverrides | None = None
    force: bool = Field(
        False, description="start even while a job for these models runs or is in cooldown (recorded on the job)"
    )

    @model_validator(mode="after")
    def _types_match_kind(self) -> RetrainingRequest:
        if self.kind == "partial" and not self.model_types:
            raise ValueError("a partial retraining needs model_types")
        if self.kind == "full" and self.model_types:
            raise ValueError("a full retraining takes the policy's model types; use kind=partial to choose")
        return self


class JobAccepted(BaseModel):
    job_id: str
    status: str
    url: str


class JobsQuery(_In):
    status: JobStatus | None = None
    limit: int = Field(20, ge=1, le=200)


class Job(JobRecord):
    """A job as the API answers it: `JobRecord` without the workers' bookkeeping."""

    model_config = ConfigDict(
        serialize_by_alias=True,
        json_schema_mode_override="serialization",
        json_schema_serialization_defaults_required=True,
    )

    started_at: UtcDateTime
    completed_at: UtcDateTime | None
    heartbeat_at: datetime | None = Field(None, exclude=True)
    metadata: dict[str, Any] = Field(default_factory=dict, exclude=True)
    forced_over: dict[str, str] | None = Field(
        None, description="the blocking jobs (model type -> job id) that `force: true` overrode"
    )

    training_window: dict[str, Any] | None = Field(
        None,
        description="a drift-triggered job: how its training window was chosen (method, change_point, start, "
        "reason, features searched; app/retraining/window.py)",
    )

    @classmethod
    def of(cls, record: JobRecord) -> Job:
        job = cls.model_validate(record, from_attributes=True)
        extra = {k: record.metadata.get(k) for k in ("forced_over", "training_window") if record.metadata.get(k)}
        return job.model_copy(update=extra) if extra else job


class JobList(BaseModel):
    jobs: list[Job]


# --------------------------------------------------------------------------- models


class ModelsQuery(_In):
    model_type: str | None = Field(None, max_length=50)
    status: ModelStatus | None = None
    limit: int = Field(50, ge=1, le=500)


class Model(ModelRecord):
    """A model as the API answers it: `ModelRecord` without where its artifact is and how it was trained."""

    model_config = ConfigDict(
        json_schema_mode_override="serialization", json_schema_serialization_defaults_required=True
    )

    created_at: UtcDateTime
    promoted_at: UtcDateTime | None = None
    retired_at: UtcDateTime | None = None
    file_path: str = Field("", exclude=True)
    manifest: dict[str, Any] | None = Field(None, exclude=True)
    training_config: dict[str, Any] | None = Field(None, exclude=True)
    training_data_range: dict[str, Any] | None = Field(None, exclude=True)
    feature_count: int | None = Field(None, exclude=True)
    notes: str | None = Field(None, exclude=True)

    @classmethod
    def of(cls, record: ModelRecord) -> Model:
        return cls.model_validate(record, from_attributes=True)


class ModelList(BaseModel):
    models: list[Model]


class RetireRequest(_In):
    reason: str = Field(..., min_length=1, max_length=200)
    confirm: bool = Field(
        False, description="needed to retire the ACTIVE model: its type is left without one (predictions refused)"
    )


class RollbackRequest(_In):
    version: str = Field(..., min_length=1, max_length=50, pattern=ID_PATTERN)


class CancelRequest(_In):
    reason: str = Field("cancelled by operator", min_length=1, max_length=200)


class PromoteRequest(_In):
    reason: str = Field("promoted by operator", min_length=1, max_length=200)


# --------------------------------------------------------------------------- drift


class DriftQuery(_In):
    severity: Severity | None = None
    model_type: str | None = Field(None, max_length=50)
    limit: int = Field(50, ge=1, le=500)


class DriftEventOut(BaseModel):
    id: int
    detected_at: UtcDateTime
    drift_type: str
    model_type: str | None
    feature_name: str | None
    p_value: float | None
    threshold: float | None
    severity: str
    action_taken: str | None
    retraining_job_id: str | None
    metadata: dict[str, Any] | None


class DriftEventList(BaseModel):
    events: list[DriftEventOut]


# --------------------------------------------------------------------------- policy


class PolicyOut(BaseModel):
    version: int
    policy: dict[str, Any]


class PolicyPatch(_In):
    patch: dict[str, Any] = Field(..., description="Fields to change, nested like the policy document")
    comment: str = Field("", max_length=500)


# --------------------------------------------------------------------------- outcomes


class TradeOutcome(_In):
    """A closed trade, as the shadow tester, the RL agents and the supervisor read it."""

    trade_id: str = Field(..., min_length=1, max_length=255, pattern=ID_PATTERN)
    pnl_pct: float = Field(..., ge=-100, le=100_000, description="realised PnL in percent (3.0 = +3 %)")
    duration_hours: float = Field(..., ge=0, le=24 * 365)
    symbol: str | None = Field(None, min_length=1, max_length=20)
    side: Literal["LONG", "SHORT"] | None = None
    realized_return: float | None = Field(None, ge=-50, le=50, description="market log return over the trade")
    max_drawdown_pct: float = Field(0.0, ge=-100, le=100)
    hit_tp: bool = False
    hit_sl: bool = False
    winrate: float | None = Field(None, ge=0, le=1, description="recent winrate of the engine")
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    prediction_id: int | None = Field(
        None,
        ge=1,
        le=ROW_ID_MAX,
        description="the served prediction this trade followed: closes its shadow pair, and only that",
    )
    shadow_test_id: int | None = Field(
        None,
        ge=1,
        le=ROW_ID_MAX,
        description="the shadow pair to close (every prediction returns it); with neither id, the latest open "
        "pair of `symbol` made before the trade opened is closed",
    )
    prediction_ids: list[RowId] | None = Field(
        None, max_length=64, description="several served predictions (an ensemble's)"
    )
    shadow_test_ids: list[RowId] | None = Field(
        None, max_length=64, description="the shadow pairs recorded beside those predictions"
    )
    entry_price: float | None = Field(None, gt=0, lt=1e12)
    exit_price: float | None = Field(None, gt=0, lt=1e12)
    size_usd: float | None = Field(None, ge=0, le=1e12)
    leverage: int | None = Field(None, ge=1, le=125)
    strategy: str | None = Field(None, max_length=50, description="the strategy traded")
    exit_reason: str | None = Field(None, max_length=50, description="tp | sl | horizon | ...")
    meta_state: dict[str, Any] | None = None
    meta_action: str | None = Field(None, max_length=100)
    meta_next_state: dict[str, Any] | None = None
    sizing_state: dict[str, Any] | None = None
    sizing_action: str | dict[str, Any] | None = None
    sizing_next_state: dict[str, Any] | None = None
    meta_decision_id: str | None = Field(
        None, min_length=1, max_length=64, pattern=ID_PATTERN,
        description="a decision of POST /api/rl/meta-strategy/decision: the agent learns its state and strategy",
    )  # fmt: skip
    sizing_decision_id: str | None = Field(
        None, min_length=1, max_length=64, pattern=ID_PATTERN,
        description="a decision of POST /api/rl/position-sizing/decision: the agent learns its state and action",
    )  # fmt: skip


class OutcomeAccepted(BaseModel):
    event_id: int
    topic: str
    replayed: bool = Field(False, description="this trade had been accepted before (a retry): nothing new published")


# --------------------------------------------------------------------------- status, alerts


class Acknowledgement(BaseModel):
    by: str = Field(description="who acknowledged it (as they named themselves)")
    at: UtcDateTime
    note: str | None


class Alert(BaseModel):
    id: str = Field(description="the occurrence's short id: `POST /api/alerts/{id}/ack` acknowledges it")
    key: str = Field(description="identifies one occurrence: raised once")
    name: str
    severity: Literal["critical", "warning"]
    message: str = Field(description="the whole message (a failed job's whole error), never cut")
    since: UtcDateTime | None
    acknowledged: Acknowledgement | None = Field(description="who acknowledged it and when; none if nobody has")


class AcknowledgeRequest(_In):
    by: str = Field("operator", min_length=1, max_length=100, description="who acknowledges it")
    note: str | None = Field(None, min_length=1, max_length=2000)


class AcknowledgeAnswer(BaseModel):
    id: str
    key: str
    name: str
    acknowledged: Acknowledgement
    recorded: bool = Field(description="false when it was acknowledged before: the first acknowledgement stands")
    holds: bool = Field(description="whether the alert's condition still holds")


class AlertList(BaseModel):
    alerts: list[Alert]


class ClmStatus(BaseModel):
    trading_halted: dict[str, Any]
    manager: dict[str, Any] = Field(description="ContinuousLearningManager.get_status()")
    retraining: dict[str, Any]
    models: dict[str, Any]
    shadow_tests: list[dict[str, Any]]
    rl_agents: list[dict[str, Any]]
    regimes: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="symbol (and MARKET, the index) -> current regime, from the beat task"
    )
    drift: dict[str, Any]
    schedule: dict[str, Any] = Field(description="the beat schedule, as GET /api/schedule")
    recent_jobs: list[dict[str, Any]]
    alerts: list[Alert]
    policy_version: int


class ScheduleEntry(BaseModel):
    name: str
    task: str | None
    interval_seconds: float | None
    last_run_at: UtcDateTime | None = Field(description="none until it has run (as beat reported)")
    next_run_at: UtcDateTime | None = Field(description="none while beat is not running")


class Schedule(BaseModel):
    enabled: bool = Field(description="clm_config.enabled: off, beat runs only the event sweep")
    beat: dict[str, Any] = Field(description="running, seen_at (beat's last report), reason when not running")
    entries: list[ScheduleEntry]


# --------------------------------------------------------------------------- RL


class RLAgent(BaseModel):
    rl_type: str
    version: int
    states: int
    total_updates: int
    epsilon: float
    updated_at: UtcDateTime


class RLAgentList(BaseModel):
    agents: list[RLAgent]


MarketRegime = Literal["TRENDING", "RANGING", "CHOPPY", "VOLATILE"]


class MetaStrategyStateIn(_In):
    """The specification's `MetaStrategyState`."""

    market_regime: MarketRegime
    volatility_level: Literal["LOW", "MEDIUM", "HIGH", "EXTREME"]
    liquidity_level: Literal["LOW", "MEDIUM", "HIGH"]
    recent_performance: Literal["GOOD", "NEUTRAL", "POOR"] = Field(description="GOOD > +5 % last 7 d, POOR < -3 %")


class MetaDecisionRequest(_In):
    state: MetaStrategyStateIn


class TradingHaltView(BaseModel):
    """Whether trading is halted (CRITICAL drift) when the answer was made; an operator resumes it."""

    trading_halted: bool = False
    halt_reason: str | None = None
    halted_since: datetime | None = None


class MetaDecisionOut(TradingHaltView):
    decision_id: str = Field(description="name it in POST /api/outcomes as meta_decision_id")
    strategy: Literal["trend_follow", "mean_reversion", "breakout", "range_bound", "defensive"]
    q_values: dict[str, float] = Field(description="every strategy's Q in this state: what the choice was made from")
    epsilon: float
    explored: bool = Field(description="chosen at random (exploration), not the best Q")
    version: int = Field(description="the agent's live Q-table version")
    state_key: str


class SizingStateIn(_In):
    """The specification's `SizingState`."""

    market_regime: MarketRegime
    signal_confidence: float = Field(..., ge=0, le=1)
    portfolio_exposure: float = Field(..., ge=0, le=100, description="share of capital in positions (1.0 = all)")
    recent_winrate: float = Field(..., ge=0, le=1, description="last 20 trades")
    volatility: float = Field(..., ge=0, le=1000, description="ATR as percent of price")


class SizingDecisionRequest(_In):
    state: SizingStateIn
    balance_usd: float = Field(..., ge=0, le=1e12, description="the account balance the risk limits apply to")
    open_positions: int = Field(0, ge=0, le=100_000)


class SizingDecisionOut(TradingHaltView):
    decision_id: str = Field(description="name it in POST /api/outcomes as sizing_decision_id")
    allowed: bool = Field(description="false: open no position (risk limits or trading halted)")
    size_usd: float = Field(description="position size after the clamp")
    leverage: int = Field(description="leverage after the clamp")
    tp_strategy: str
    sl_strategy: str
    action: str = Field(description="the action key the agent chose (and learns on)")
    proposed_size_usd: float
    proposed_leverage: int
    clamped: bool
    clamp_reasons: list[str] = Field(description="which limits of the risk mode applied, and the halt")
    risk_mode: str
    q_value: float
    epsilon: float
    explored: bool
    version: int
    state_key: str


class RLResetRequest(_In):
    reason: str = Field("operator reset", min_length=1, max_length=200)


class RLResetOut(BaseModel):
    rl_type: str
    old_version: int
    new_version: int
    reason: str


# --------------------------------------------------------------------------- shadow tests


class ShadowQuery(_In):
    min_samples: int | None = Field(None, ge=1, le=10_000_000, description="default: the policy's")


class ShadowEvaluation(BaseModel):
    shadow_model_id: str
    active_model_id: str | None
    total_samples: int
    active_metrics: dict[str, Any]
    shadow_metrics: dict[str, Any]
    improvement_pct: float | None
    pnl_difference: float | None
    p_value_better: float | None
    p_value_worse: float | None
    recommendation: str
    reasons: list[str]
    decision_samples: int = Field(description="pairs of the latest look, which the metrics describe")
    next_look_samples: int | None = Field(description="resolved pairs at which the next decision is due")
    significance_level: float | None = Field(description="the latest look's significance level")
    test_blocks: int | None = Field(
        None, description="the paired test's independent units: time blocks, all symbols together (None: pairs)"
    )
    block_hours: float | None = Field(None, description="a time block's length: twice the label horizon")
    rule: str = Field(
        "superiority",
        description="superiority (the shadow must be shown better) or non_inferiority (after a regime "
        "change: shown to trail the active by less than the margin; p_value_better is that test's)",
    )
    non_inferiority_margin: float = Field(0.0, description="per pair, as a return (0: superiority)")
    pair_concurrency: float = Field(
        1.0, description="pairs open at once; the drawdown limit compares the pairs' equity scaled by it (books)"
    )
    book: dict[str, Any] | None = Field(
        None,
        description="both models on the same pairs (the decision's) scored as staggered books by "
        "app/model_training/scoring.py, fees on position changes: per model net_pnl, sharpe, "
        "directional_accuracy (traded rows), traded_share; `difference` shadow - active with its "
        "block-bootstrap interval_95. Reported beside the per-pair figures; the decision does not use it",
    )


# --------------------------------------------------------------------------- predictions


class CandleIn(_In):
    timestamp: int = Field(..., ge=0, le=10**14, description="open time, ms since epoch (UTC)")
    open: float = Field(..., gt=0, lt=1e12)
    high: float = Field(..., gt=0, lt=1e12)
    low: float = Field(..., gt=0, lt=1e12)
    close: float = Field(..., gt=0, lt=1e12)
    volume: float = Field(..., ge=0, lt=1e18)


class PredictionRequest(_In):
    symbol: str = Field(..., min_length=1, max_length=20, pattern=r"^[A-Za-z0-9]+(/[A-Za-z0-9]+)?(:[A-Za-z0-9]+)?$")
    model_type: str | None = Field(None, min_length=1, max_length=50)
    candles: list[CandleIn] | None = Field(
        None, max_length=5000, description="recent closed candles, oldest first; default: the candle store's"
    )


class PredictionOut(TradingHaltView):
    prediction_id: int
    symbol: str
    model_id: str
    model_type: str
    predicted_return: float
    direction: int
    confidence: float
    timestamp: UtcDateTime
    horizon_end: UtcDateTime
    latency_ms: float = Field(description="the prediction's own time; model loading is apart (model_load_ms)")
    model_load_ms: float = Field(
        0.0, description="time this request spent loading its models (0 once they were preloaded): a cold start"
    )
    shadow: dict[str, Any] | None
    shadow_test_id: int | None
    abstained: bool = Field(
        False,
        description="an explicit abstention (direction 0): the model's calibrated confidence is under the "
        "policy's training.min_confidence (its confidence still reported), or no model of the type passed "
        "the baseline gate (model_id empty, confidence 0, prediction_id 0: nothing logged)",
    )
    abstain_reason: str | None = Field(
        None,
        description="why: 'confidence 0.47 below min_confidence 0.50', or 'no <type> model passed the "
        "baseline gate; the last: ...'; null when it did not abstain",
    )


class DriftCheckAccepted(BaseModel):
    task: str
    task_id: str | None = Field(
        description="the Celery task id to follow (Flower's /api/task/info/{task_id}); none when it ran inline"
    )
    last_check: UtcDateTime | None = Field(description="the previous check, or this one when it ran in this process")


class ResumeRequest(_In):
    reason: str = Field("operator", min_length=1, max_length=200)
