"""A CRITICAL drift's trading halt ends by itself (policy `clm_config.trading_halt`, `app/clm/halt.py`):
when a model retrained after it began is promoted, or (`max_hours`) on the hourly health check."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from app.clm.manager import ContinuousLearningManager
from app.core.clock import SimulatedClock
from app.core.db.models import RetrainingJob
from app.core.policy import PolicyValidationError
from app.core.system import trading_halt
from app.data_pipeline.timeframes import to_ms
from app.model_registry import ModelRegistry
from app.model_supervisor import ModelSupervisor
from app.simulation.counterfactual import halted_mask
from tests.clocks import simulated_clock

START = datetime(2025, 1, 1)


@pytest.fixture
def clock() -> Iterator[SimulatedClock]:
    with simulated_clock(START) as simulated:
        yield simulated


def _job(container, started_at: datetime) -> str:  # type: ignore[no-untyped-def]
    job_id = f"job_{uuid.uuid4().hex[:8]}"
    with container.session() as session:
        session.add(
            RetrainingJob(
                job_id=job_id,
                job_type="full",
                trigger_reason="drift_critical",
                status="completed",
                started_at=started_at,
                completed_at=started_at + timedelta(hours=1),
                model_types=["xgboost"],
                created_at=started_at,
            )
        )
    return job_id


def _register(container, job_id: str | None) -> str:  # type: ignore[no-untyped-def]
    run = uuid.uuid4().hex[:8]
    stored = container.artifacts.put_bytes(f"models/xgboost/{run}/forecaster.json", json.dumps({"run": run}).encode())
    trained = {
        "model_type": "xgboost",
        "file_path": stored.path,
        "sha256": stored.sha256,
        "file_size_bytes": stored.size_bytes,
        "metrics": {"accuracy": 0.5},
    }
    return ModelRegistry(container).register_model(trained, job_id=job_id)


def _halt(container):  # type: ignore[no-untyped-def]
    with container.session_factory() as session:
        return trading_halt(session)


def _resumed_reasons(container) -> list[str]:  # type: ignore[no-untyped-def]
    return [e["payload"]["reason"] for e in container.bus.recent("clm.trading.resumed", limit=10)]


def _shadow_trained_at(container, clock: SimulatedClock, at: datetime) -> str:  # type: ignore[no-untyped-def]
    """A first (ACTIVE) xgboost, then a SHADOW one whose job started at `at`."""
    _register(container, _job(container, START - timedelta(days=7)))
    return _register(container, _job(container, at))


def test_a_model_retrained_after_the_halt_lifts_it_when_promoted(sqlite_container, clock) -> None:
    manager = ContinuousLearningManager(sqlite_container)
    clock.set(START + timedelta(hours=6))
    manager.halt_trading("CRITICAL feature drift")
    shadow = _shadow_trained_at(sqlite_container, clock, START + timedelta(hours=6))  # the job the drift started
    clock.set(START + timedelta(days=2))
    assert _halt(sqlite_container) is not None

    ModelRegistry(sqlite_container).promote_shadow_to_active("xgboost")

    assert _halt(sqlite_container) is None and not manager.trading_halted()
    [reason] = _resumed_reasons(sqlite_container)
    assert reason.startswith("auto: xgboost v2, retrained after the halt (job job_")
    assert "started 2025-01-01T06:00" in reason and "halt since 2025-01-01T06:00" in reason
    assert reason.endswith("promoted") and shadow == "xgboost_v2"
    # The counterfactual book reads the automatic resume as it reads the operator's.
    stamps = to_ms(START) + np.arange(0, 72 * 60, 60, dtype=np.int64) * 60_000
    mask = halted_mask(sqlite_container, pd.DataFrame({"timestamp": stamps, "symbol": "BTC/USDT"}))
    assert mask.any() and not mask[-1]


def test_a_model_trained_before_the_halt_does_not_lift_it(sqlite_container, clock) -> None:
    manager = ContinuousLearningManager(sqlite_container)
    _shadow_trained_at(sqlite_container, clock, START + timedelta(hours=5))  # an hour before the halt
    clock.set(START + timedelta(hours=6))
    manager.halt_trading("CRITICAL feature drift")
    clock.set(START + timedelta(days=2))

    ModelRegistry(sqlite_container).promote_shadow_to_active("xgboost")

    assert _halt(sqlite_container) is not None and manager.trading_halted()
    assert _resumed_reasons(sqlite_container) == []


def test_a_halt_renewed_by_a_later_drift_keeps_its_start(sqlite_container, clock) -> None:
    """A job started after the first halt lifts it though a later CRITICAL drift halted again."""
    manager = ContinuousLearningManager(sqlite_container)
    clock.set(START + timedelta(hours=6))
    manager.halt_trading("CRITICAL feature drift")
    _shadow_trained_at(sqlite_container, clock, START + timedelta(hours=6))
    clock.set(START + timedelta(hours=12))
    manager.halt_trading("CRITICAL performance drift")
    halt = _halt(sqlite_container)
    assert halt.since == START + timedelta(hours=6) and halt.reason == "CRITICAL performance drift"

    ModelRegistry(sqlite_container).promote_shadow_to_active("xgboost")

    assert _halt(sqlite_container) is None


def test_resume_on_promotion_off_leaves_the_halt(sqlite_container, clock) -> None:
    sqlite_container.policy_store.update({"clm_config": {"trading_halt": {"resume_on_promotion": False}}})
    manager = ContinuousLearningManager(sqlite_container)
    clock.set(START + timedelta(hours=6))
    manager.halt_trading("CRITICAL feature drift")
    _shadow_trained_at(sqlite_container, clock, START + timedelta(hours=7))

    ModelRegistry(sqlite_container).promote_shadow_to_active("xgboost")

    assert manager.trading_halted() and _resumed_reasons(sqlite_container) == []


def test_a_promotion_without_a_halt_resumes_nothing(sqlite_container, clock) -> None:
    _shadow_trained_at(sqlite_container, clock, START)
    ModelRegistry(sqlite_container).promote_shadow_to_active("xgboost")
    assert _resumed_reasons(sqlite_container) == []


def test_the_hourly_health_check_lifts_a_halt_older_than_max_hours(sqlite_container, clock) -> None:
    sqlite_container.policy_store.update({"clm_config": {"trading_halt": {"max_hours": 48}}})
    manager = ContinuousLearningManager(sqlite_container)
    supervisor = ModelSupervisor(sqlite_container)
    clock.set(START + timedelta(hours=6))
    manager.halt_trading("CRITICAL feature drift")
    clock.set(START + timedelta(hours=30))
    manager.halt_trading("CRITICAL feature drift")  # renewed: the age still counts from 06:00

    clock.set(START + timedelta(hours=53))  # 47 h
    supervisor.check_all_models()
    assert manager.trading_halted()

    clock.set(START + timedelta(hours=55))  # 49 h
    supervisor.check_all_models()
    assert not manager.trading_halted()
    assert _resumed_reasons(sqlite_container) == ["auto: halt older than 48 h (policy max_hours)"]

    supervisor.check_all_models()  # nothing halted: nothing more
    assert len(_resumed_reasons(sqlite_container)) == 1


def test_without_max_hours_no_halt_ends_by_age(sqlite_container, clock) -> None:
    assert sqlite_container.policy_store.get().clm_config.trading_halt.max_hours is None
    manager = ContinuousLearningManager(sqlite_container)
    manager.halt_trading("CRITICAL feature drift")
    clock.set(START + timedelta(days=365))
    ModelSupervisor(sqlite_container).check_all_models()
    assert manager.trading_halted() and _resumed_reasons(sqlite_container) == []


def test_the_operator_still_resumes_at_once(sqlite_container, clock) -> None:
    sqlite_container.policy_store.update({"clm_config": {"trading_halt": {"max_hours": 48}}})
    manager = ContinuousLearningManager(sqlite_container)
    manager.halt_trading("CRITICAL feature drift")
    clock.set(START + timedelta(hours=1))
    manager.resume_trading("checked by the operator")
    assert not manager.trading_halted()
    assert _resumed_reasons(sqlite_container) == ["checked by the operator"]


@pytest.mark.parametrize("value", [0, -1, -0.5, 1e-9, 1e308, float("inf"), "soon"])
def test_max_hours_must_be_a_positive_usable_number(sqlite_container, value) -> None:
    store = sqlite_container.policy_store
    store.ensure_default()
    with pytest.raises(PolicyValidationError) as info:
        store.update({"clm_config": {"trading_halt": {"max_hours": value}}})
    assert "clm_config.trading_halt.max_hours" in [e["field"] for e in info.value.errors], info.value.errors
    assert "clm_config.trading_halt.max_hours" in str(info.value)
    assert store.current_version() == 1


def test_max_hours_zero_says_it_must_be_positive(sqlite_container) -> None:
    with pytest.raises(PolicyValidationError) as info:
        sqlite_container.policy_store.update({"clm_config": {"trading_halt": {"max_hours": 0}}})
    assert info.value.errors == [
        {"field": "clm_config.trading_halt.max_hours", "reason": "Input should be greater than 0"}
    ]


def test_the_defaults_and_null_are_accepted(sqlite_container) -> None:
    store = sqlite_container.policy_store
    policy = store.get().clm_config.trading_halt
    assert policy.resume_on_promotion is True and policy.max_hours is None
    _, updated = store.update({"clm_config": {"trading_halt": {"max_hours": 72}}})
    assert updated.clm_config.trading_halt.max_hours == 72
    _, updated = store.update({"clm_config": {"trading_halt": {"max_hours": None, "resume_on_promotion": False}}})
    assert updated.clm_config.trading_halt.max_hours is None
    assert updated.clm_config.trading_halt.resume_on_promotion is False
