"""The main run's loops for bench/clm_value.py: full, scheduled only, frozen (RunConfig.loop)."""

from __future__ import annotations

import pytest

from app.core.policy import validate_policy
from app.core.policy.schema import Policy
from app.simulation.config import RunConfig


def _policy(config: RunConfig) -> Policy:
    patch = config.policy_patch()
    document = Policy().model_dump(mode="json")
    for section, values in patch.items():
        for key, value in values.items():
            merged = document[section].get(key)
            document[section][key] = merged | value if isinstance(merged, dict) and isinstance(value, dict) else value
    return validate_policy(document)


def test_each_loop_sets_what_runs_and_keeps_the_runs_settings() -> None:
    full = RunConfig(model_types=("xgboost", "lightgbm"))
    scheduled = RunConfig(loop="scheduled")
    frozen = RunConfig(loop="frozen")
    assert full.beat_jobs() is None and full.policy_patch()["training"]["model_types"] == ["xgboost", "lightgbm"]
    assert full.policy_patch()["training"]["cv_folds"] == 2  # the merge keeps the run's own training settings
    assert _policy(full).clm_config.drift_detection.enabled and _policy(full).clm_config.enabled
    assert not _policy(scheduled).clm_config.drift_detection.enabled and _policy(scheduled).clm_config.enabled
    assert scheduled.policy_patch()["clm_config"]["schedule_interval_days"] == 7.0
    assert "health-check" not in (scheduled.beat_jobs() or set()) and "full-retraining" in (
        scheduled.beat_jobs() or set()
    )
    assert not _policy(frozen).clm_config.enabled


def test_an_unknown_loop_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="loop: 'weekly'"):
        RunConfig(loop="weekly")  # type: ignore[arg-type]


def test_the_bench_keeps_every_model_file_without_losing_the_loop_settings() -> None:
    """retired_versions_kept reaches the policy (checked range), and merges with the loop's own clm_config."""
    for loop in ("full", "scheduled", "frozen"):
        config = RunConfig(loop=loop, retired_versions_kept=1000)  # type: ignore[arg-type]
        policy = _policy(config)
        assert policy.clm_config.retired_versions_kept == 1000
        assert policy.clm_config.drift_detection.enabled is (loop != "scheduled")  # frozen: the whole CLM off
        assert policy.clm_config.enabled is (loop != "frozen")
    assert _policy(RunConfig()).clm_config.retired_versions_kept == 5  # the policy's own otherwise
