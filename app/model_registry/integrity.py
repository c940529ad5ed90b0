"""Checks before a version goes live again: its lifecycle and its artifact's hashes.

A model's `file_path` is its manifest (or, for artifacts stored without one, the file
itself) with the sha256 the registry holds; a manifest lists each file with its own
sha256. `verify_artifact` reads and hashes them all, parsing nothing but the manifest's JSON.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.artifacts import ArtifactIntegrityError, ArtifactStore
from app.core.db.models import ModelStatusHistory
from app.model_registry.records import ACTIVE


def verify_artifact(artifacts: ArtifactStore, file_path: str, sha256: str | None) -> None:
    """Raise ArtifactIntegrityError (or ArtifactNotFoundError) unless every file matches its hash."""
    if not sha256:
        raise ArtifactIntegrityError(f"artifact {file_path} has no sha256 in the registry to verify it against")
    data = artifacts.get_bytes(file_path, sha256)
    files = _manifest_files(data)
    directory = PurePosixPath(file_path).parent
    for name, meta in files.items():
        if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
            raise ArtifactIntegrityError(f"manifest {file_path} names a file outside its folder: {name!r}")
        expected = meta.get("sha256") if isinstance(meta, dict) else None
        if not expected:
            raise ArtifactIntegrityError(f"manifest {file_path} gives no sha256 for {name!r}")
        artifacts.get_bytes(str(directory / name), expected)


def _manifest_files(data: bytes) -> dict[str, Any]:
    """The manifest's `files`; none for an artifact that is not a manifest."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return {}
    files = document.get("files") if isinstance(document, dict) else None
    return files if isinstance(files, dict) else {}


def was_active(session: Session, model_id: str) -> bool:
    """Whether the status history shows `model_id` ACTIVE at some time."""
    query = select(ModelStatusHistory.id).where(
        ModelStatusHistory.model_id == model_id, ModelStatusHistory.new_status == ACTIVE
    )
    return session.scalars(query.limit(1)).first() is not None
