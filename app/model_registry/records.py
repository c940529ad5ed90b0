"""Plain records and errors of the model registry (no database types leak out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from app.core.db.models import ModelRegistry as ModelRow

ACTIVE, SHADOW, TRAINING, RETIRED, REJECTED = "ACTIVE", "SHADOW", "TRAINING", "RETIRED", "REJECTED"
# Statuses whose artifacts retention may delete (beyond the newest N per type).
NOT_LIVE = (RETIRED, REJECTED)


class RegistryError(RuntimeError):
    """A registry operation that cannot be done as asked; the message says why."""


class ModelNotFoundError(RegistryError, LookupError):
    pass


class NoShadowModelError(RegistryError):
    pass


class ModelRecord(BaseModel):
    """A registered model as every reader gets it: the API (`public_dict`, `schemas.Model`), the CLI, the services."""

    model_config = ConfigDict(frozen=True)

    # What the API shows of a model (`public_dict`).
    model_id: str
    model_type: str
    version: str
    status: str
    metrics: dict[str, Any]
    created_at: datetime
    promoted_at: datetime | None = None
    retired_at: datetime | None = None
    sha256: str | None
    file_size_bytes: int | None = None
    feature_set_id: str | None = None
    job_id: str | None = None
    # Where the artifact is and how it was trained (INTERNAL): not part of the API's answer.
    file_path: str
    manifest: dict[str, Any] | None = None
    training_config: dict[str, Any] | None = None
    training_data_range: dict[str, Any] | None = None
    feature_count: int | None = None
    notes: str | None = None

    INTERNAL: ClassVar[frozenset[str]] = frozenset(
        {"file_path", "manifest", "training_config", "training_data_range", "feature_count", "notes"}
    )

    @classmethod
    def from_row(cls, row: ModelRow) -> ModelRecord:
        return cls(
            model_id=row.model_id,
            model_type=row.model_type,
            version=row.version,
            status=row.status,
            metrics=dict(row.metrics or {}),
            file_path=row.file_path,
            sha256=row.sha256,
            file_size_bytes=row.file_size_bytes,
            manifest=row.manifest,
            training_config=row.training_config,
            training_data_range=row.training_data_range,
            feature_set_id=row.feature_set_id,
            feature_count=row.feature_count,
            created_at=row.created_at,
            promoted_at=row.promoted_at,
            retired_at=row.retired_at,
            job_id=row.job_id,
            notes=row.notes,
        )

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready."""
        return self.model_dump(mode="json")

    def public_dict(self) -> dict[str, Any]:
        """What the API and the dashboard show of a model (the JSON of `schemas.Model`, unserialised)."""
        return self.model_dump(exclude=set(self.INTERNAL))


@dataclass
class ModelCandidate:
    """What the registry needs from a trained model (built from `TrainedModel` or a dict)."""

    model_type: str
    file_path: str
    sha256: str | None
    metrics: dict[str, Any] = field(default_factory=dict)
    file_size_bytes: int | None = None
    manifest: dict[str, Any] | None = None
    training_config: dict[str, Any] | None = None
    training_data_range: dict[str, Any] | None = None
    feature_set_id: str | None = None
    feature_count: int | None = None
    artifact_dir: str | None = None

    @classmethod
    def from_trained(cls, trained: Any) -> ModelCandidate:
        """Accept a `TrainedModel` (attributes), a mapping, or a candidate itself."""
        if isinstance(trained, ModelCandidate):
            return trained
        get = trained.get if isinstance(trained, dict) else lambda k, d=None: getattr(trained, k, d)
        model_type = get("model_type")
        file_path = get("file_path") or get("artifact_path")
        if not model_type or not file_path:
            raise RegistryError(f"a trained model needs model_type and file_path; got {model_type=!r} {file_path=!r}")
        manifest = get("manifest")
        return cls(
            model_type=str(model_type),
            file_path=str(file_path),
            sha256=get("sha256"),
            metrics=dict(get("metrics") or {}),
            file_size_bytes=get("file_size_bytes") or get("size_bytes"),
            manifest=dict(manifest) if manifest else None,
            training_config=get("training_config"),
            training_data_range=get("training_data_range"),
            feature_set_id=get("feature_set_id"),
            feature_count=get("feature_count"),
            artifact_dir=get("artifact_dir"),
        )
