from __future__ import annotations

import pytest

from app.core.clock import utcnow
from app.core.db.models import PolicyVersion
from app.core.policy import Policy, PolicyConflictError, PolicyValidationError
from workers.beat import build_beat_schedule


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
        *("model_types", "seed", "cv_folds", "fold_tasks", "train_frac", "val_frac"),
        *("target", "demean_target", "min_confidence"),
        *("xgboost", "lightgbm", "nhits", "patchtst", "naive"),
    }


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"data": {"timeframe": "banana"}}, "data.timeframe"),
        ({"data": {"timeframe": "30d"}}, "data.timeframe"),
        ({"training": {"model_types": []}}, "training.model_types"),
        ({"training": {"model_types": ["evil"]}}, "training.model_types.0"),
        ({"data": {"symbols": ["../../etc/passwd"]}}, "data.symbols.0"),
        ({"data": {"symbols": ["BTC/USDT", ""]}}, "data.symbols.1"),
        ({"data": {"symbols": ["BTCUSDTBTCUSDTBTCUSDT/USDT"]}}, "data.symbols.0"),
        ({"clm_config": {"health_check_interval_hours": 1e-12}}, "clm_config.health_check_interval_hours"),
        ({"clm_config": {"schedule_interval_days": 1e308}}, "clm_config.schedule_interval_days"),
        ({"clm_config": {"schedule_interval_days": float("nan")}}, "clm_config.schedule_interval_days"),
        ({"training": {"xgboost": {"n_estimators": 10**9}}}, "training.xgboost.n_estimators"),
        ({"training": {"nhits": {"max_steps": 2 * 10**9}}}, "training.nhits.max_steps"),
        ({"data": {"lookback_days": 1e6}}, "data.lookback_days"),
        ({"risk": {"base_position_usd": float("inf")}}, "risk.base_position_usd"),
        ({"training": {"min_confidence": 1.5}}, "training.min_confidence"),
        ({"training": {"min_confidence": float("nan")}}, "training.min_confidence"),
        ({"training": {"target": "sharpe"}}, "training.target"),
    ],
)
def test_store_refuses_values_the_system_cannot_use(sqlite_container, patch, field) -> None:
    """Issue 18, defect 1: each of these was stored and then broke readers far from the edit."""
    store = sqlite_container.policy_store
    store.ensure_default()
    with pytest.raises(PolicyValidationError) as info:
        store.update(patch)
    assert field in [e["field"] for e in info.value.errors], info.value.errors
    assert store.current_version() == 1
    assert store.get() == Policy()


def test_the_defaults_and_known_values_pass_the_checks(sqlite_container) -> None:
    store = sqlite_container.policy_store
    store.ensure_default()
    patch = {
        "data": {"timeframe": "1h", "symbols": ["SOL/USDT", "1000PEPE/USDT"], "lookback_days": 365},
        "training": {"model_types": ["naive", "xgboost"]},
        "clm_config": {"health_check_interval_hours": 0.25},
    }
    version, policy = store.update(patch)
    assert version == 2 and policy.data.timeframe == "1h"


def test_an_empty_patch_stores_no_version(sqlite_container) -> None:
    store = sqlite_container.policy_store
    store.ensure_default()
    version, policy = store.update({})
    assert (version, store.current_version(), policy) == (1, 1, Policy())


def test_a_stale_base_version_is_refused(sqlite_container) -> None:
    store = sqlite_container.policy_store
    store.ensure_default()
    store.update({"clm_config": {"schedule_interval_days": 3}}, base_version=1)
    with pytest.raises(PolicyConflictError) as info:
        store.update({"clm_config": {"schedule_interval_days": 5}}, base_version=1)
    assert (info.value.base_version, info.value.current_version) == (1, 2)
    assert store.get().clm_config.schedule_interval_days == 3


def test_readers_skip_a_stored_version_they_cannot_use(sqlite_container) -> None:
    """A version written before the checks (or by another tool) must not break every reader, beat included."""
    store = sqlite_container.policy_store
    store.ensure_default()
    store.update({"clm_config": {"schedule_interval_days": 3}})
    bad = Policy().model_dump(mode="json")
    bad["clm_config"]["schedule_interval_days"] = 1e308
    bad["data"]["timeframe"] = "banana"
    with sqlite_container.session() as session:
        session.add(PolicyVersion(version=3, document=bad, created_at=utcnow(), author="tool", comment=""))
    assert store.get().clm_config.schedule_interval_days == 3
    assert store.current() == (2, store.get())
    assert build_beat_schedule(store.get())  # beat builds a schedule instead of keeping a stale one
    # The next edit starts from the usable version and supersedes the unusable one.
    version, policy = store.update({"clm_config": {"health_check_interval_hours": 2}})
    assert version == 4 and policy.clm_config.schedule_interval_days == 3
