"""`retraining_jobs` rows: ids, records, row locks and the small updates the steps make.

Job ids are `RTN-YYYYMMDD-NNN`, numbered per day; on PostgreSQL the number is taken
under a transaction-scoped advisory lock, so concurrent starts never collide.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Integer, cast, func, select, text
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db.models import RetrainingJob

if TYPE_CHECKING:
    from app.core.container import Container

PENDING, RUNNING, COMPLETED, PARTIAL, FAILED, CANCELLED = (
    "pending",
    "running",
    "completed",
    "partial",
    "failed",
    "cancelled",
)
TERMINAL = (COMPLETED, PARTIAL, FAILED, CANCELLED)
# A model type's entry in a job (`models_trained`): training -> trained -> registered, or FAILED / CANCELLED.
TRAINING, TRAINED, REGISTERED = "training", "trained", "registered"
# A walk-forward fold's entry (`models_trained[<type>]["folds"][<k>]`, app/retraining/folds.py): training -> scored.
SCORED = "scored"
JOB_TYPES = ("full", "partial", "rl_maintenance")
ID_PREFIX = "RTN-"


class JobNotFoundError(LookupError):
    pass


class JobRecord(BaseModel):
    """A retraining job as every reader gets it: the API (`public_dict`, `schemas.Job`), the CLI, the CLM."""

    model_config = ConfigDict(frozen=True)

    # What the API shows of a job (`public_dict`); the per-model results are `models_trained` there.
    job_id: str
    job_type: str
    trigger_reason: str
    status: str
    stage: str | None
    progress_pct: float | None
    started_at: datetime
    completed_at: datetime | None
    duration_seconds: int | None
    model_types: list[str]
    # per model type: status, model_id, error, queue, worker, ...
    models: dict[str, dict[str, Any]] = Field(serialization_alias="models_trained")
    error_message: str | None
    # The workers' bookkeeping (INTERNAL): not part of the API's answer.
    heartbeat_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    INTERNAL: ClassVar[frozenset[str]] = frozenset({"heartbeat_at", "metadata"})

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_row(cls, row: RetrainingJob) -> JobRecord:
        return cls(
            job_id=row.job_id,
            job_type=row.job_type,
            trigger_reason=row.trigger_reason,
            status=row.status,
            started_at=row.started_at,
            completed_at=row.completed_at,
            duration_seconds=row.duration_seconds,
            model_types=list(row.model_types or []),
            models=dict(row.models_trained or {}),
            error_message=row.error_message,
            stage=row.stage,
            progress_pct=row.progress_pct,
            heartbeat_at=row.heartbeat_at,
            metadata=dict(row.metadata_ or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (the CLI's `jobs show`, the CLM's history)."""
        return self.model_dump(mode="json")

    def public_dict(self) -> dict[str, Any]:
        """What the API and the dashboard show of a job (the JSON of `schemas.Job`, unserialised)."""
        return self.model_dump(by_alias=True, exclude=set(self.INTERNAL))


def next_job_id(session: Session, now: datetime) -> str:
    """The next free `RTN-YYYYMMDD-NNN` for `now`'s day (call inside the inserting transaction)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext('retraining_jobs:id'))"))
    prefix = f"{ID_PREFIX}{now:%Y%m%d}-"
    number = cast(func.substr(RetrainingJob.job_id, len(prefix) + 1), Integer)
    latest = session.scalar(select(func.max(number)).where(RetrainingJob.job_id.like(f"{prefix}%")))
    return f"{prefix}{(latest or 0) + 1:03d}"


def insert_job(
    session: Session, job_type: str, reason: str, model_types: list[str], metadata: dict[str, Any]
) -> RetrainingJob:
    if job_type not in JOB_TYPES:
        raise ValueError(f"job_type must be one of {JOB_TYPES}, got {job_type!r}")
    now = utcnow()
    row = RetrainingJob(
        job_id=next_job_id(session, now),
        job_type=job_type,
        trigger_reason=reason[:100],
        status=RUNNING,
        started_at=now,
        model_types=list(model_types),
        models_trained={},
        stage="queued",
        progress_pct=0.0,
        heartbeat_at=now,
        metadata_=metadata,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def lock_job(session: Session, job_id: str) -> RetrainingJob:
    """The job row, locked for this transaction (SELECT ... FOR UPDATE on PostgreSQL)."""
    row = session.scalars(
        select(RetrainingJob)
        .where(RetrainingJob.job_id == job_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise JobNotFoundError(f"no retraining job {job_id!r}")
    return row


def set_model_result(row: RetrainingJob, model_type: str, **values: Any) -> dict[str, Any]:
    """Merge `values` into the job's entry for `model_type` (a new dict, so the JSON column is saved)."""
    models = dict(row.models_trained or {})
    entry = dict(models.get(model_type) or {}) | values
    models[model_type] = entry
    row.models_trained = models
    return entry


def set_metadata(row: RetrainingJob, **values: Any) -> None:
    row.metadata_ = dict(row.metadata_ or {}) | values


def training_progress(row: RetrainingJob) -> float:
    """The share of the canvas's tasks that have finished (`metadata.canvas_tasks`: the dataset,
    every final fit and fold, the callback); jobs without that count: 10 % after the dataset,
    80 % spread over the models, the rest for finalizing."""
    meta = row.metadata_ or {}
    entries = (row.models_trained or {}).values()
    total = int(meta.get("canvas_tasks") or 0)
    if total:
        done = 1 if meta.get("dataset_id") or meta.get("dataset_error") else 0
        done += len(meta.get("pieces") or {})
        partial = 0.0  # a final fit under way counts as far as it has got (trees, steps)
        for entry in entries:
            done += entry.get("status") in (TRAINED, FAILED, REGISTERED)
            done += sum(f.get("status") in (SCORED, FAILED) for f in (entry.get("folds") or {}).values())
            partial += model_fraction(entry) if entry.get("status") == TRAINING else 0.0
            partial += sum(fit_fraction(f) for f in (entry.get("folds") or {}).values() if f.get("status") == TRAINING)
        return round(100.0 * min(done + partial, total) / total, 1)
    count = max(1, len(row.model_types or []))
    fraction = sum(model_fraction(e) for e in entries)
    return round(10.0 + 80.0 * fraction / count, 1)


def model_fraction(entry: dict[str, Any]) -> float:
    """How far one model's training is, its fits taken as equal parts: the final fit first, then CV
    fold k of n (k/(n+1) at its start); inside a fit, the share of its budget of trees or steps built;
    0.95 while storing, 1 once it has an outcome."""
    if entry.get("status") in (TRAINED, FAILED):
        return 1.0
    progress = entry.get("progress") or {}
    if entry.get("status") != TRAINING or not progress.get("total"):
        return 0.0
    within = fit_fraction(entry)
    stage = str(progress.get("stage", ""))
    if stage.startswith("cv fold"):
        return (float(progress["done"]) + within) / (float(progress["total"]) + 1.0)
    if stage == "fit":  # total: the fits this training makes (the final one and its folds)
        return within / float(progress["total"])
    return 0.95 if stage == "storing" else 0.0


def fit_fraction(entry: dict[str, Any]) -> float:
    """The share of the running fit's budget (trees, steps) built, from an entry's `progress.in_fit`."""
    inner = (entry.get("progress") or {}).get("in_fit") or {}
    return min(1.0, float(inner["done"]) / float(inner["total"])) if inner.get("total") else 0.0


def progress_label(progress: dict[str, Any]) -> str:
    """A model's progress for people: "cv fold 2 of 5, trees 120 of 300", "fit, steps 40 of 100", "storing"."""
    inner = progress.get("in_fit") or {}
    label = str(progress.get("stage") or "")
    if inner:
        label += f", {inner.get('unit')} {inner.get('done')} of {inner.get('total')}"
    return label


def touch(container: Container, job_id: str, model_type: str | None = None) -> None:
    """Heartbeat: the job's tasks are alive; with `model_type`, that model's training task is
    (its entry's `heartbeat_at`, which the lost-task sweep reads)."""
    with container.session() as session:
        # A model's beat locks the row: the entries share one JSON column with the other model types' tasks.
        row = session.get(RetrainingJob, job_id) if model_type is None else lock_job(session, job_id)
        if row is None or row.status != RUNNING:
            return
        now = utcnow()
        row.heartbeat_at = now
        entry = (row.models_trained or {}).get(model_type) if model_type else None
        if entry is not None and entry.get("status") == TRAINING:
            set_model_result(row, model_type, heartbeat_at=now.isoformat())  # type: ignore[arg-type]
