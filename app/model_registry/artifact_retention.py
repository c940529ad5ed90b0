"""Retention: every ACTIVE and SHADOW model is kept, and the newest N not-live versions per type.

Older RETIRED/REJECTED versions lose their artifacts; their registry rows and status
history stay, so "which version was live when" remains answerable.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from sqlalchemy import Integer, cast, or_, select, text

from app.core.clock import utcnow
from app.core.db.models import ModelRegistry as ModelRow
from app.model_registry.records import NOT_LIVE

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)

DELETED_MARK = "artifacts deleted by retention"


def artifact_dir(file_path: str) -> str:
    """The folder holding one trained model's files (`models/<type>/<run-id>/...`)."""
    parts = PurePosixPath(file_path).parts
    if len(parts) >= 3 and parts[0] == "models":
        return "/".join(parts[:3])
    return file_path


def delete_old_artifacts(container: Container, keep: int, model_type: str | None = None) -> list[str]:
    """Delete the artifacts of not-live versions beyond the newest `keep` per type; returns the paths."""
    if keep < 0:
        raise ValueError(f"retention must keep a non-negative number of versions, got {keep}")
    deleted: list[str] = []
    version_desc = cast(ModelRow.version, Integer).desc()
    with container.session() as session:
        live_paths = {
            artifact_dir(p) for p in session.scalars(select(ModelRow.file_path).where(ModelRow.status.not_in(NOT_LIVE)))
        }
        types = [model_type] if model_type else list(session.scalars(select(ModelRow.model_type).distinct()))
        for current_type in types:
            if session.get_bind().dialect.name == "postgresql":
                # The registry's per-type lock: two retention runs never delete the same folder.
                session.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"registry:{current_type}"}
                )
            not_live = select(ModelRow).where(ModelRow.model_type == current_type, ModelRow.status.in_(NOT_LIVE))
            kept = (
                select(ModelRow.model_id)
                .where(ModelRow.model_type == current_type, ModelRow.status.in_(NOT_LIVE))
                .order_by(version_desc)
                .limit(keep)
            )
            # Rows whose files are already gone are skipped in SQL: the scan stays short as history grows.
            doomed = session.scalars(
                not_live.where(
                    ModelRow.model_id.not_in(kept.scalar_subquery()) if keep else ModelRow.model_id.is_not(None),
                    or_(ModelRow.notes.is_(None), ModelRow.notes.not_like(f"%{DELETED_MARK}")),
                )
            ).all()
            for row in doomed:
                target = artifact_dir(row.file_path)
                if target in live_paths:  # shared with a live model: never delete
                    continue
                try:
                    container.artifacts.delete(target)
                except FileNotFoundError:  # gone already (deleted by hand or by an older run)
                    log.info("retention: %s was already gone", target)
                row.notes = f"{row.notes + '; ' if row.notes else ''}{utcnow().isoformat()} {DELETED_MARK}"
                deleted.append(target)
    if deleted:
        log.info("retention deleted %d old model artifact folder(s): %s", len(deleted), deleted)
    return deleted
