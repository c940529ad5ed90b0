"""The policy: one validated document of every tunable (`schema`), stored as versioned rows (`store`)."""

from app.core.policy.schema import (
    AutoPromoteThreshold,
    ClmConfig,
    DataConfig,
    DriftDetection,
    FeatureConfig,
    LabelConfig,
    Policy,
    PolicyValidationError,
    Retention,
    RiskConfig,
    RiskMode,
    RLConfig,
    RLMaintenance,
    SupervisorConfig,
    TrainingConfig,
    validate_policy,
)
from app.core.policy.store import PolicyStore, load_policy

__all__ = [
    "AutoPromoteThreshold",
    "ClmConfig",
    "DataConfig",
    "DriftDetection",
    "FeatureConfig",
    "LabelConfig",
    "Policy",
    "PolicyStore",
    "PolicyValidationError",
    "RLConfig",
    "RLMaintenance",
    "Retention",
    "RiskConfig",
    "RiskMode",
    "SupervisorConfig",
    "TrainingConfig",
    "load_policy",
    "validate_policy",
]
