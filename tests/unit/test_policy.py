from __future__ import annotations

import pytest

from app.core.policy import Policy, PolicyValidationError


def test_defaults_are_the_specifications_numbers() -> None:
    clm = Policy().clm_config
    assert clm.schedule_interval_days == 7
    assert clm.auto_promote_threshold.min_samples == 1000
    assert clm.auto_promote_threshold.min_improvement_pct == 5.0
    assert clm.auto_promote_threshold.max_drawdown_pct == 3.0
    assert clm.drift_detection.check_interval_hours == 6
    assert clm.drift_detection.ks_test_threshold == 0.05
    assert clm.rl_maintenance.snapshot_interval_trades == 500
    assert clm.rl_maintenance.reset_on_regime_change is True
    assert clm.rl_maintenance.prune_old_states_threshold == 10000
    assert Policy().labels.horizon == 12


def test_store_versions_and_refuses_invalid_edits(sqlite_container) -> None:
    store = sqlite_container.policy_store
    store.ensure_default()
    assert store.current_version() == 1
    version, policy = store.update({"clm_config": {"schedule_interval_days": 3}}, comment="faster")
    assert version == 2 and policy.clm_config.schedule_interval_days == 3
    # Other fields survive a partial update.
    assert policy.clm_config.drift_detection.check_interval_hours == 6

    with pytest.raises(PolicyValidationError) as info:
        store.update({"clm_config": {"auto_promote_threshold": {"min_samples": -5}}})
    assert info.value.errors[0]["field"] == "clm_config.auto_promote_threshold.min_samples"
    assert "greater than or equal" in info.value.errors[0]["reason"]

    with pytest.raises(PolicyValidationError) as info:
        store.update({"risk": {"active_mode": "yolo"}})
    assert "yolo" in str(info.value)

    with pytest.raises(PolicyValidationError) as info:
        store.update({"clm_config": {"no_such_setting": 1}})
    assert info.value.errors[0]["field"] == "clm_config.no_such_setting"

    # Nothing changed by the refused edits.
    assert store.current_version() == 2
    assert store.get().clm_config.schedule_interval_days == 3
    assert store.get().risk.active_mode == "normal"


def test_a_policy_stored_before_a_model_type_had_a_section_still_loads() -> None:
    document = Policy().model_dump(mode="json")
    del document["training"]["naive"]  # stored before naive had params
    document["training"]["xgboost"] = {"n_estimators": 50}  # a partial section: the rest defaults
    policy = Policy.model_validate(document)
    assert policy.training.naive.mode == "persistence"
    assert policy.training.xgboost.n_estimators == 50 and policy.training.xgboost.max_bin == 256
    assert policy.training.patchtst.input_size == 64 and policy.training.nhits.input_size == 48
    assert set(Policy().model_dump()["training"]) == {
        *("model_types", "seed", "cv_folds", "train_frac", "val_frac"),
        *("xgboost", "lightgbm", "nhits", "patchtst", "naive"),
    }
