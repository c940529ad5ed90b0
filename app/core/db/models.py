"""SQLAlchemy 2 models for every table of the specification and what it grew into.

Timestamps are naive UTC (the specification's `TIMESTAMP`), written from `app.core.clock`
so that a simulated clock stamps rows with simulated time. Alembic migrations in
`schema/` create the same tables; `tests/integration/test_schema.py` proves they agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# JSONB on PostgreSQL, JSON (text) on SQLite.
JsonType = JSON().with_variant(JSONB(), "postgresql")

# The database's own "now" in UTC, for rows written in the specification's shape without a
# write time (`created_at TIMESTAMP DEFAULT NOW()`); the application still sets these columns
# itself (its clock may be simulated). On PostgreSQL since migration 0006.
NOW_UTC = text("timezone('utc', now())")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Model statuses (DESIGN: TRAINING, SHADOW, ACTIVE, RETIRED, REJECTED).
MODEL_STATUSES = ("TRAINING", "SHADOW", "ACTIVE", "RETIRED", "REJECTED")
JOB_STATUSES = ("pending", "running", "completed", "partial", "failed", "cancelled")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JsonType, list[Any]: JsonType}


# --------------------------------------------------------------------------- registry


class ModelRegistry(Base):
    __tablename__ = "model_registry"

    model_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    model_type: Mapped[str] = mapped_column(String(50))
    version: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(50))
    metrics: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    training_config: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    training_data_range: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    feature_count: Mapped[int | None] = mapped_column(Integer)
    feature_set_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW_UTC)
    promoted_at: Mapped[datetime | None] = mapped_column(DateTime)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime)
    file_path: Mapped[str] = mapped_column(Text)
    file_size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    manifest: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    job_id: Mapped[str | None] = mapped_column(String(255))
    notes: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("model_type", "version"),
        Index("idx_model_type_status", "model_type", "status"),
        Index("idx_created_at_desc", "created_at"),
        # The database itself refuses a second ACTIVE or SHADOW model of one type.
        Index(
            "uq_model_registry_one_active",
            "model_type",
            unique=True,
            postgresql_where=text("status = 'ACTIVE'"),
            sqlite_where=text("status = 'ACTIVE'"),
        ),
        Index(
            "uq_model_registry_one_shadow",
            "model_type",
            unique=True,
            postgresql_where=text("status = 'SHADOW'"),
            sqlite_where=text("status = 'SHADOW'"),
        ),
    )


class ModelStatusHistory(Base):
    """Every status change of every model: which version was live when is answerable."""

    __tablename__ = "model_status_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("model_registry.model_id"))
    model_type: Mapped[str] = mapped_column(String(50))
    old_status: Mapped[str | None] = mapped_column(String(50))
    new_status: Mapped[str] = mapped_column(String(50))
    changed_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW_UTC)
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("idx_status_history_type_time", "model_type", "changed_at"),)


# --------------------------------------------------------------------------- shadow testing


class ShadowTestResult(Base):
    """One paired prediction (ACTIVE beside SHADOW) and, later, its outcome.

    The numeric columns duplicate the JSON documents' key fields so that an
    evaluation over a million rows is a columnar read, not JSON parsing.
    """

    __tablename__ = "shadow_test_results"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    # Model ids without foreign keys (as in the specification): the shadow tester checks them
    # once per batch; per row, the keys cost half of a batched insert (schema 0004).
    shadow_model_id: Mapped[str] = mapped_column(String(255))
    active_model_id: Mapped[str] = mapped_column(String(255))
    symbol: Mapped[str] = mapped_column(String(20))
    timestamp: Mapped[datetime] = mapped_column(DateTime)
    active_prediction: Mapped[dict[str, Any]] = mapped_column(JsonType)
    shadow_prediction: Mapped[dict[str, Any]] = mapped_column(JsonType)
    actual_outcome: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    outcome_recorded_at: Mapped[datetime | None] = mapped_column(DateTime)
    active_direction: Mapped[int | None] = mapped_column(SmallInteger)
    shadow_direction: Mapped[int | None] = mapped_column(SmallInteger)
    active_confidence: Mapped[float | None] = mapped_column(Float)
    shadow_confidence: Mapped[float | None] = mapped_column(Float)
    realized_return: Mapped[float | None] = mapped_column(Float)
    horizon_end: Mapped[datetime | None] = mapped_column(DateTime)
    trade_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW_UTC)

    __table_args__ = (
        Index("idx_shadow_model", "shadow_model_id", "timestamp"),
        Index(
            "idx_outcome_null",
            "shadow_model_id",
            postgresql_where=text("actual_outcome IS NULL"),
            sqlite_where=text("actual_outcome IS NULL"),
        ),
        Index("idx_shadow_trade_id", "trade_id"),
    )


class ShadowEvaluationState(Base):
    """A shadow test's running statistics over its first `pairs` closed pairs in time order, up to
    (`last_timestamp`, `last_id`): the next evaluation reads only the pairs after them
    (`app.shadow_tester.incremental`). `id_sum` with `pairs` tells whether the closed pairs up
    to there are still the same set."""

    __tablename__ = "shadow_evaluation_state"

    shadow_model_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    pairs: Mapped[int] = mapped_column(BigInteger)
    id_sum: Mapped[int] = mapped_column(BigInteger)
    last_timestamp: Mapped[datetime] = mapped_column(DateTime)
    last_id: Mapped[int] = mapped_column(BigInteger)
    stats: Mapped[dict[str, Any]] = mapped_column(JsonType)
    updated_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW_UTC)


# --------------------------------------------------------------------------- RL


class RLVersion(Base):
    __tablename__ = "rl_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rl_type: Mapped[str] = mapped_column(String(50))  # meta_strategy, position_sizing
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW_UTC)
    archived_at: Mapped[datetime | None] = mapped_column(DateTime)
    q_table_file: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    total_states: Mapped[int | None] = mapped_column(Integer)
    total_updates: Mapped[int | None] = mapped_column(Integer)
    epsilon: Mapped[float | None] = mapped_column(Float)
    learning_rate: Mapped[float | None] = mapped_column(Float)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JsonType)

    __table_args__ = (
        UniqueConstraint("rl_type", "version"),
        Index("idx_rl_type_version", "rl_type", "version"),
    )


class RLAgentState(Base):
    """The live state of one agent: its current version, counters and exploration rate.

    Updates from several worker processes serialise on this row (SELECT ... FOR UPDATE).
    """

    __tablename__ = "rl_agent_state"

    rl_type: Mapped[str] = mapped_column(String(50), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    total_updates: Mapped[int] = mapped_column(Integer, default=0)
    updates_since_snapshot: Mapped[int] = mapped_column(Integer, default=0)
    epsilon: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW_UTC)


class RLQValue(Base):
    __tablename__ = "rl_q_values"

    rl_type: Mapped[str] = mapped_column(String(50), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    state_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    action: Mapped[str] = mapped_column(String(100), primary_key=True)
    q_value: Mapped[float] = mapped_column(Float, default=0.0)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    last_update: Mapped[int] = mapped_column(Integer, default=0)  # agent's update counter


class RLAppliedUpdate(Base):
    """One row per trade applied to an agent: a redelivered trade is not applied twice."""

    __tablename__ = "rl_applied_updates"

    rl_type: Mapped[str] = mapped_column(String(50), primary_key=True)
    trade_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW_UTC)
    reward: Mapped[float | None] = mapped_column(Float)
    # The experience itself (NULL on rows older than schema 0003): the live version the trade was
    # applied to, and the state and action it rewarded; saved versions compare with a random policy.
    version: Mapped[int | None] = mapped_column(Integer)
    state_key: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str | None] = mapped_column(String(100))


class RLDecision(Base):
    """A decision an agent served over the API (`POST /api/rl/<agent>/decision`): who decided
    what, with which live version. An outcome that names it applies exactly this state and
    action, once: `trade_id` is set by the first outcome and never again."""

    __tablename__ = "rl_decisions"

    decision_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rl_type: Mapped[str] = mapped_column(String(50))
    version: Mapped[int] = mapped_column(Integer)
    decided_at: Mapped[datetime] = mapped_column(DateTime, index=True, server_default=NOW_UTC)
    state: Mapped[dict[str, Any]] = mapped_column(JsonType)
    state_key: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    halted: Mapped[bool] = mapped_column(Boolean, default=False)  # trading was halted when it was decided
    allowed: Mapped[bool] = mapped_column(Boolean, default=True)  # sizing: False when no trade may open
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType)  # the answer as served (Q-values, size, clamp)
    trade_id: Mapped[str | None] = mapped_column(String(255))  # the trade whose outcome applied it
    applied_at: Mapped[datetime | None] = mapped_column(DateTime)
    outcome_event_id: Mapped[int | None] = mapped_column(Integer)  # the execution.trade.closed event


# --------------------------------------------------------------------------- drift & health


class DriftEvent(Base):
    __tablename__ = "drift_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    detected_at: Mapped[datetime] = mapped_column(DateTime)
    drift_type: Mapped[str] = mapped_column(String(50))  # feature, prediction, performance
    model_type: Mapped[str | None] = mapped_column(String(50))
    feature_name: Mapped[str | None] = mapped_column(String(100))
    p_value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    severity: Mapped[str] = mapped_column(String(20))  # low, medium, high, critical
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JsonType)
    action_taken: Mapped[str | None] = mapped_column(String(50))
    retraining_job_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW_UTC)

    __table_args__ = (
        Index("idx_detected_at", "detected_at"),
        Index(
            "idx_severity",
            "severity",
            postgresql_where=text("severity IN ('high', 'critical')"),
            sqlite_where=text("severity IN ('high', 'critical')"),
        ),
    )


class ModelPerformanceLog(Base):
    __tablename__ = "model_performance_logs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("model_registry.model_id"))
    timestamp: Mapped[datetime] = mapped_column(DateTime)
    winrate: Mapped[float | None] = mapped_column(Float)
    total_trades: Mapped[int | None] = mapped_column(Integer)
    avg_confidence: Mapped[float | None] = mapped_column(Float)
    calibration_error: Mapped[float | None] = mapped_column(Float)
    long_short_ratio: Mapped[float | None] = mapped_column(Float)
    avg_latency_ms: Mapped[float | None] = mapped_column(Float)
    total_predictions: Mapped[int | None] = mapped_column(Integer)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JsonType)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW_UTC)

    __table_args__ = (Index("idx_model_timestamp", "model_id", "timestamp"),)


class PredictionLog(Base):
    """Every prediction served (model supervisor's `log_prediction`) and its outcome."""

    __tablename__ = "prediction_logs"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("model_registry.model_id"))
    symbol: Mapped[str] = mapped_column(String(20))
    timestamp: Mapped[datetime] = mapped_column(DateTime)
    predicted_return: Mapped[float | None] = mapped_column(Float)
    direction: Mapped[int | None] = mapped_column(SmallInteger)
    confidence: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    realized_return: Mapped[float | None] = mapped_column(Float)
    outcome_recorded_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW_UTC)

    __table_args__ = (
        Index("idx_prediction_model_time", "model_id", "timestamp"),
        # the logs still open, for outcome resolution (schema 0005)
        Index(
            "idx_prediction_open",
            "id",
            postgresql_where=text("outcome IS NULL"),
            sqlite_where=text("outcome IS NULL"),
        ),
    )


# --------------------------------------------------------------------------- jobs


class RetrainingJob(Base):
    __tablename__ = "retraining_jobs"

    job_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    job_type: Mapped[str] = mapped_column(String(50))  # full, partial, rl_maintenance
    trigger_reason: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(50))
    started_at: Mapped[datetime] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    models_trained: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    model_types: Mapped[list[Any] | None] = mapped_column(JsonType)
    error_message: Mapped[str | None] = mapped_column(Text)
    stage: Mapped[str | None] = mapped_column(String(50))
    progress_pct: Mapped[float | None] = mapped_column(Float)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JsonType)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW_UTC)

    __table_args__ = (
        Index("idx_started_at", "started_at"),
        Index("idx_status", "status"),
    )


class Dataset(Base):
    """A built dataset (Parquet in the artifact store) and its manifest."""

    __tablename__ = "datasets"

    dataset_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    file_path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    feature_set_id: Mapped[str] = mapped_column(String(64))
    manifest: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW_UTC)


# --------------------------------------------------------------------------- data


class Candle(Base):
    __tablename__ = "candles"

    exchange: Mapped[str] = mapped_column(String(50), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(30), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(10), primary_key=True)
    open_time: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # ms since epoch, UTC
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    volume: Mapped[float] = mapped_column(Float)


class CandleCoverage(Base):
    """Time ranges [start_ms, end_ms) already fetched or imported for one series.

    Exchange outages leave holes in the candles themselves; coverage tells a hole that
    was asked for (and is known empty) from a range never asked for, so a repeated fetch
    asks the exchange for nothing. Touching ranges are merged into one row.
    """

    __tablename__ = "candle_coverage"

    exchange: Mapped[str] = mapped_column(String(50), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(30), primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(10), primary_key=True)
    start_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    end_ms: Mapped[int] = mapped_column(BigInteger)


# --------------------------------------------------------------------------- events, policy, flags


class Event(Base):
    """The outbox: an event is a row first, written in its state change's transaction."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW_UTC)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending, delivered, dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        Index("idx_events_pending", "status", "next_attempt_at"),
        Index("idx_events_topic_time", "topic", "created_at"),
    )


class EventDelivery(Base):
    """Which handler has taken which event: a retry calls only the handlers that failed."""

    __tablename__ = "event_deliveries"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), primary_key=True)
    handler: Mapped[str] = mapped_column(String(200), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))  # delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW_UTC)


class AlertAcknowledgement(Base):
    """An operator's acknowledgement of one alert occurrence (`POST /api/alerts/<id>/ack`, `clm
    alerts ack`). Alerts are derived from the tables; `alert_id` is the short hash of the
    occurrence's key (`app.operations.alerts.alert_id`). The first acknowledgement stands."""

    __tablename__ = "alert_acknowledgements"

    alert_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    alert_key: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(100))
    acknowledged_at: Mapped[datetime] = mapped_column(DateTime, index=True, server_default=NOW_UTC)
    acknowledged_by: Mapped[str] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)


class PolicyVersion(Base):
    __tablename__ = "policies"

    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW_UTC)
    author: Mapped[str | None] = mapped_column(String(100))
    comment: Mapped[str | None] = mapped_column(Text)


class SystemFlag(Base):
    """Named switches the system sets itself (e.g. `trading_halted` after CRITICAL drift)."""

    __tablename__ = "system_flags"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JsonType)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, server_default=NOW_UTC)


# B-tree indexes are scanned in either direction, so the specification's `DESC`
# indexes are plain column indexes here (same plans, and comparable by Alembic).
