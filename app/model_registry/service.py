"""The model registry: versions, statuses, promotion, rollback and retention.

Every status change is one `model_status_history` row written in the same transaction
as the change, and every public call is one transaction. On PostgreSQL, changes to one
model type serialise on a transaction-scoped advisory lock, so concurrent promotions
cannot interleave; the partial unique indexes (one ACTIVE, one SHADOW per type) are
the last line of defence.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, cast, func, select, text
from sqlalchemy.orm import Session

from app.core.artifacts import ArtifactIntegrityError, ArtifactNotFoundError
from app.core.clock import utcnow
from app.core.db.models import ModelRegistry as ModelRow
from app.core.db.models import ModelStatusHistory
from app.core.topics import ModelPromoted, ModelRegistered, ModelRetired, TopicEvent
from app.model_registry.artifact_retention import delete_old_artifacts
from app.model_registry.integrity import verify_artifact, was_active
from app.model_registry.records import (
    ACTIVE,
    NOT_LIVE,
    REJECTED,
    RETIRED,
    SHADOW,
    TRAINING,
    ConfirmationRequiredError,
    ModelCandidate,
    ModelNotFoundError,
    ModelRecord,
    NoShadowModelError,
    RegistryError,
    RollbackRefusedError,
)

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)

DEFAULT_KEEP_RETIRED = 5


class ModelRegistry:
    def __init__(self, container: Container, keep_retired: int | None = None) -> None:
        self.container = container
        self._keep_retired = keep_retired

    @property
    def keep_retired(self) -> int:
        if self._keep_retired is not None:
            return self._keep_retired
        clm = self.container.policy_store.get().clm_config
        return int(getattr(clm, "retired_versions_kept", DEFAULT_KEEP_RETIRED))

    # ----------------------------------------------------------------- registration

    def register_model(self, trained: Any, *, job_id: str | None = None, notes: str | None = None) -> str:
        """Register a trained model: ACTIVE if its type has none yet, else SHADOW."""
        candidate = ModelCandidate.from_trained(trained)
        with self.container.session() as session:
            self._lock_type(session, candidate.model_type)
            row = self._insert(session, candidate, TRAINING, job_id, notes)
            self._make_live(session, row)
            model_id = row.model_id
        self.apply_retention(candidate.model_type)
        return model_id

    def stage_model(self, trained: Any, *, job_id: str | None = None, session: Session | None = None) -> str:
        """Record a trained model as TRAINING (not yet live); `register_staged` makes it live.

        With `session`, the row joins the caller's transaction (a job records its result atomically).
        """
        candidate = ModelCandidate.from_trained(trained)
        if session is not None:
            self._lock_type(session, candidate.model_type)
            return self._insert(session, candidate, TRAINING, job_id, None).model_id
        with self.container.session() as own_session:
            self._lock_type(own_session, candidate.model_type)
            return self._insert(own_session, candidate, TRAINING, job_id, None).model_id

    def register_staged(self, model_id: str) -> ModelRecord:
        """TRAINING -> SHADOW (or ACTIVE for a first model). Idempotent: a live model is returned as is."""
        with self.container.session() as session:
            row = self._row(session, model_id)
            self._lock_type(session, row.model_type)
            session.refresh(row)
            if row.status == TRAINING:
                self._make_live(session, row)
            record = ModelRecord.from_row(row)
        self.apply_retention(record.model_type)
        return record

    def add_staged_metrics(self, model_id: str, metrics: dict[str, Any]) -> ModelRecord:
        """Merge `metrics` into a TRAINING model's (the walk-forward figures and the gate its folds
        produced after the final fit was stored); a model already live or rejected is left as it was."""
        with self.container.session() as session:
            row = self._row(session, model_id)
            self._lock_type(session, row.model_type)
            session.refresh(row)
            if row.status == TRAINING:
                row.metrics = dict(row.metrics or {}) | metrics
            return ModelRecord.from_row(row)

    def reject_model(self, model_id: str, reason: str, *, session: Session | None = None) -> ModelRecord:
        """Mark a model REJECTED (a failed shadow test, an abandoned job's staged model).

        With `session`, the change joins the caller's transaction.
        """
        with self._transaction(session) as tx:
            row = self._row(tx, model_id)
            self._lock_type(tx, row.model_type)
            tx.refresh(row)
            if row.status not in NOT_LIVE:
                self._transition(tx, row, REJECTED, reason)
                row.retired_at = utcnow()
                self._publish(tx, ModelRetired, row, reason)
            return ModelRecord.from_row(row)

    # ----------------------------------------------------------------- reads

    def get_model(self, model_id: str) -> ModelRecord:
        with self.container.session() as session:
            return ModelRecord.from_row(self._row(session, model_id))

    def get_active_model(self, model_type: str) -> ModelRecord | None:
        return self._by_status(model_type, ACTIVE)

    def get_shadow_model(self, model_type: str) -> ModelRecord | None:
        return self._by_status(model_type, SHADOW)

    def list_models(
        self, model_type: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[ModelRecord]:
        """Newest first, optionally filtered by type and status."""
        query = select(ModelRow).order_by(ModelRow.created_at.desc(), ModelRow.model_id.desc()).limit(limit)
        if model_type:
            query = query.where(ModelRow.model_type == model_type)
        if status:
            query = query.where(ModelRow.status == status.upper())
        with self.container.session() as session:
            return [ModelRecord.from_row(r) for r in session.scalars(query)]

    def status_history(self, model_type: str) -> list[dict[str, Any]]:
        """Every status change of `model_type`, oldest first."""
        query = (
            select(ModelStatusHistory)
            .where(ModelStatusHistory.model_type == model_type)
            .order_by(ModelStatusHistory.id)
        )
        with self.container.session() as session:
            return [
                {
                    "model_id": h.model_id,
                    "old_status": h.old_status,
                    "new_status": h.new_status,
                    "changed_at": h.changed_at.isoformat(),
                    "reason": h.reason,
                }
                for h in session.scalars(query)
            ]

    # ----------------------------------------------------------------- status changes

    def promote_shadow_to_active(
        self, model_type: str, reason: str = "shadow test passed", *, session: Session | None = None
    ) -> ModelRecord:
        """In one transaction: the ACTIVE model is retired and the SHADOW model becomes ACTIVE.

        With `session`, the change joins the caller's transaction and the caller applies
        retention after its commit (`apply_retention`).
        """
        with self._transaction(session) as tx:
            self._lock_type(tx, model_type)
            shadow = self._current(tx, model_type, SHADOW)
            if shadow is None:
                raise NoShadowModelError(f"{model_type} has no SHADOW model to promote")
            self._replace_active(tx, shadow, reason)
            record = ModelRecord.from_row(shadow)
        if session is None:
            self.apply_retention(model_type)
        return record

    def current_shadow(self, session: Session, model_type: str) -> ModelRecord | None:
        """Within the caller's transaction: the SHADOW model of `model_type`, the type locked
        until the transaction ends (so a decision about it cannot race another change)."""
        self._lock_type(session, model_type)
        row = self._current(session, model_type, SHADOW)
        return ModelRecord.from_row(row) if row else None

    def retire_model(self, model_id: str, reason: str = "retired by operator", *, confirm: bool = False) -> ModelRecord:
        """Retire a model. The ACTIVE one only with `confirm`: its type is left without an ACTIVE
        model (predictions refused, an alert) until a promotion or rollback."""
        with self.container.session() as session:
            row = self._row(session, model_id)
            self._lock_type(session, row.model_type)
            session.refresh(row)
            if row.status == ACTIVE and not confirm:
                raise ConfirmationRequiredError(
                    f"{model_id} is the ACTIVE {row.model_type} model: retiring it leaves {row.model_type} without "
                    "an ACTIVE model (its predictions are refused); confirm to retire it anyway"
                )
            if row.status != RETIRED:
                self._retire(session, row, reason)
            record = ModelRecord.from_row(row)
        self.apply_retention(record.model_type)
        return record

    def rollback(self, model_type: str, version: str | int) -> ModelRecord:
        """Make an earlier version ACTIVE again.

        Only a version that was ACTIVE before (the status history says so), or the SHADOW model
        when the policy's `clm_config.rollback_to_shadow` allows it; never one still TRAINING or
        never tested. Its artifact must exist and match its hashes (checked before the switch).
        """
        version = str(version).lstrip("v")
        with self.container.session() as session:
            self._lock_type(session, model_type)
            target = session.scalars(
                select(ModelRow).where(ModelRow.model_type == model_type, ModelRow.version == version)
            ).first()
            if target is None:
                raise ModelNotFoundError(f"{model_type} has no version {version!r}")
            if target.status == ACTIVE:
                return ModelRecord.from_row(target)
            if not self.container.artifacts.exists(target.file_path):
                raise RegistryError(
                    f"cannot roll {model_type} back to v{version}: its artifact {target.file_path} is gone "
                    "(deleted by retention or by hand)"
                )
            allow_shadow = self.container.policy_store.get(session).clm_config.rollback_to_shadow
            if not was_active(session, target.model_id) and not (allow_shadow and target.status == SHADOW):
                allowed = "was ACTIVE before (or is the SHADOW model, with clm_config.rollback_to_shadow)"
                raise RollbackRefusedError(
                    f"cannot roll {model_type} back to v{version}: it is {target.status} and never was ACTIVE; "
                    f"rollback takes a version that {allowed}"
                )
            try:
                verify_artifact(self.container.artifacts, target.file_path, target.sha256)
            except (ArtifactIntegrityError, ArtifactNotFoundError) as exc:
                raise RollbackRefusedError(f"cannot roll {model_type} back to v{version}: {exc}") from None
            self._replace_active(session, target, f"rollback to v{version}")
            record = ModelRecord.from_row(target)
        return record

    def apply_retention(self, model_type: str | None = None, *, raise_errors: bool = False) -> list[str]:
        """Delete artifacts of RETIRED/REJECTED versions beyond the newest N per type.

        Housekeeping after a committed change: a failure is logged (the next run retries) and
        never fails the registration or promotion that triggered it, unless `raise_errors`.
        """
        try:
            return delete_old_artifacts(self.container, self.keep_retired, model_type)
        except Exception:
            if raise_errors:
                raise
            log.exception("retention of %s failed; it is retried on the next status change", model_type or "all types")
            return []

    # ----------------------------------------------------------------- internals

    @contextmanager
    def _transaction(self, session: Session | None) -> Iterator[Session]:
        """The caller's transaction when given one, else a new one committed at the end."""
        if session is not None:
            yield session
            return
        with self.container.session() as own:
            yield own

    def _lock_type(self, session: Session, model_type: str) -> None:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"registry:{model_type}"})

    def _row(self, session: Session, model_id: str) -> ModelRow:
        row = session.get(ModelRow, model_id)
        if row is None:
            raise ModelNotFoundError(f"no model with id {model_id!r}")
        return row

    def _current(self, session: Session, model_type: str, status: str) -> ModelRow | None:
        query = select(ModelRow).where(ModelRow.model_type == model_type, ModelRow.status == status)
        return session.scalars(query.execution_options(populate_existing=True)).first()

    def _by_status(self, model_type: str, status: str) -> ModelRecord | None:
        with self.container.session() as session:
            row = self._current(session, model_type, status)
            return ModelRecord.from_row(row) if row else None

    def _insert(
        self, session: Session, candidate: ModelCandidate, status: str, job_id: str | None, notes: str | None
    ) -> ModelRow:
        latest = session.scalar(
            select(func.max(cast(ModelRow.version, Integer))).where(ModelRow.model_type == candidate.model_type)
        )
        version = str((latest or 0) + 1)
        now = utcnow()
        row = ModelRow(
            model_id=f"{candidate.model_type}_v{version}",
            model_type=candidate.model_type,
            version=version,
            status=status,
            metrics=candidate.metrics,
            training_config=candidate.training_config,
            training_data_range=candidate.training_data_range,
            feature_count=candidate.feature_count,
            feature_set_id=candidate.feature_set_id,
            created_at=now,
            file_path=candidate.file_path,
            file_size_bytes=candidate.file_size_bytes,
            sha256=candidate.sha256,
            manifest=candidate.manifest,
            job_id=job_id,
            notes=notes,
        )
        session.add(row)
        session.flush()
        session.add(_history(row, None, status, "trained" if job_id is None else f"trained by {job_id}"))
        return row

    def _make_live(self, session: Session, row: ModelRow) -> None:
        gate = (row.metrics or {}).get("gate") or {}
        if gate.get("passed") is False:
            # Training's baseline gate (app/model_training/scoring.py): it lost to a baseline after fees.
            reason = f"REJECTED by the baseline gate: {gate.get('reason', 'no reason recorded')}"[:2000]
            self._transition(session, row, REJECTED, reason)
            row.retired_at = utcnow()
            row.notes = row.notes or reason
            self._publish(session, ModelRetired, row, reason)
            return
        gate_note = "; BASELINE GATE OFF" if gate and gate.get("enforced") is False else ""
        if self._current(session, row.model_type, ACTIVE) is None:
            self._transition(session, row, ACTIVE, "first model of its type" + gate_note)
            row.promoted_at = utcnow()
        else:
            old_shadow = self._current(session, row.model_type, SHADOW)
            if old_shadow is not None:
                self._retire(session, old_shadow, f"superseded by shadow v{row.version}")
            self._transition(session, row, SHADOW, "new version in shadow test" + gate_note)
        self._publish(session, ModelRegistered, row, None)

    def _replace_active(self, session: Session, new_active: ModelRow, reason: str) -> None:
        old_active = self._current(session, new_active.model_type, ACTIVE)
        if old_active is not None:
            # Retired first and flushed: the one-ACTIVE index would refuse the swap otherwise.
            self._retire(session, old_active, f"replaced by v{new_active.version} ({reason})")
        old_status = new_active.status
        self._transition(session, new_active, ACTIVE, reason)
        new_active.promoted_at = utcnow()
        new_active.retired_at = None
        session.flush()
        payload_extra = {
            "previous_model_id": old_active.model_id if old_active else None,
            "old_status": old_status,
            "new_status": ACTIVE,
        }
        self._publish(session, ModelPromoted, new_active, reason, payload_extra)

    def _retire(self, session: Session, row: ModelRow, reason: str) -> None:
        self._transition(session, row, RETIRED, reason)
        row.retired_at = utcnow()
        session.flush()
        self._publish(session, ModelRetired, row, reason)

    def _transition(self, session: Session, row: ModelRow, new_status: str, reason: str) -> None:
        old_status = row.status
        row.status = new_status
        session.flush()
        session.add(_history(row, old_status, new_status, reason))
        log.info("model %s: %s -> %s (%s)", row.model_id, old_status, new_status, reason)

    def _publish(
        self,
        session: Session,
        event_type: type[TopicEvent],
        row: ModelRow,
        reason: str | None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        payload = {
            "model_id": row.model_id,
            "model_type": row.model_type,
            "version": row.version,
            "status": row.status,
            "job_id": row.job_id,
            "reason": reason,
        } | (extra or {})
        self.container.bus.publish(session, event_type(**payload))


def _history(row: ModelRow, old_status: str | None, new_status: str, reason: str) -> ModelStatusHistory:
    return ModelStatusHistory(
        model_id=row.model_id,
        model_type=row.model_type,
        old_status=old_status,
        new_status=new_status,
        changed_at=utcnow(),
        reason=reason,
    )
