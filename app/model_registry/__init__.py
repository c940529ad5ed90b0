"""Model registry (specification `model_registry.py`): versions, statuses, promotion, retention."""

from app.model_registry.artifact_retention import artifact_dir, delete_old_artifacts
from app.model_registry.records import (
    ACTIVE,
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
from app.model_registry.service import ModelRegistry

__all__ = [
    "ACTIVE",
    "REJECTED",
    "RETIRED",
    "SHADOW",
    "TRAINING",
    "ConfirmationRequiredError",
    "ModelCandidate",
    "ModelNotFoundError",
    "ModelRecord",
    "ModelRegistry",
    "NoShadowModelError",
    "RegistryError",
    "RollbackRefusedError",
    "artifact_dir",
    "delete_old_artifacts",
]
