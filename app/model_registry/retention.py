"""Retention: every ACTIVE and SHADOW model is kept, and the newest N not-live versions per type.

Older RETIRED/REJECTED versions lose their artifacts; their registry rows and status
history stay, so "which version was live when" remains answerable.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from sqlalchemy import Integer, cast, select

from app.clock import utcnow
from app.db.models import ModelRegistry as ModelRow
from app.model_registry.records import NOT_LIVE

if TYPE_CHECKING:
    from app.bootstrap import Container

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
    with container.session() as session:
        query = select(ModelRow).where(ModelRow.status.in_(NOT_LIVE))
        if model_type:
            query = query.where(ModelRow.model_type == model_type)
        rows = session.scalars(query.order_by(ModelRow.model_type, cast(ModelRow.version, Integer).desc())).all()
        live_paths = {
            artifact_dir(p) for p in session.scalars(select(ModelRow.file_path).where(ModelRow.status.not_in(NOT_LIVE)))
        }
        seen: dict[str, int] = {}
        for row in rows:
            seen[row.model_type] = seen.get(row.model_type, 0) + 1
            if seen[row.model_type] <= keep or (row.notes or "").endswith(DELETED_MARK):
                continue
            target = artifact_dir(row.file_path)
            if target in live_paths:  # shared with a live model: never delete
                continue
            container.artifacts.delete(target)
            row.notes = f"{row.notes + '; ' if row.notes else ''}{utcnow().isoformat()} {DELETED_MARK}"
            deleted.append(target)
    if deleted:
        log.info("retention deleted %d old model artifact folder(s): %s", len(deleted), deleted)
    return deleted
