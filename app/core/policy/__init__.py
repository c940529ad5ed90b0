"""The policy: one validated document of every tunable (`schema`), stored as versioned rows (`store`)."""

from app.core.policy.checks import PolicyVocabulary, policy_problems
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
from app.core.policy.store import PolicyConflictError, PolicyStore, load_policy, load_versioned

__all__ = [
    "AutoPromoteThreshold",
    "ClmConfig",
    "DataConfig",
    "DriftDetection",
    "FeatureConfig",
    "LabelConfig",
    "Policy",
    "PolicyConflictError",
    "PolicyStore",
    "PolicyValidationError",
    "PolicyVocabulary",
    "RLConfig",
    "RLMaintenance",
    "Retention",
    "RiskConfig",
    "RiskMode",
    "SupervisorConfig",
    "TrainingConfig",
    "load_policy",
    "load_versioned",
    "policy_problems",
    "validate_policy",
]
