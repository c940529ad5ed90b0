"""Concurrent status changes on the real PostgreSQL: one ACTIVE per type, always; unique job ids."""

from __future__ import annotations

import json
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from app.core.db.models import ModelRegistry as ModelRow
from app.model_registry import ModelRegistry, NoShadowModelError

pytestmark = pytest.mark.integration

THREADS = 12


def _trained(container, model_type: str) -> dict:  # type: ignore[no-untyped-def]
    run = uuid.uuid4().hex[:8]
    stored = container.artifacts.put_bytes(f"models/{model_type}/{run}/forecaster.json", json.dumps([run]).encode())
    return {"model_type": model_type, "file_path": stored.path, "sha256": stored.sha256, "metrics": {}}


def _count(container, status: str) -> int:  # type: ignore[no-untyped-def]
    with container.session() as session:
        return int(
            session.scalar(select(func.count()).where(ModelRow.model_type == "xgboost", ModelRow.status == status))
        )


def _run_together(count: int, work) -> list:  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(count)

    def one(i: int):  # type: ignore[no-untyped-def]
        barrier.wait()
        try:
            return work(i)
        except NoShadowModelError as exc:
            return exc

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_concurrent_promotions_leave_exactly_one_active(pg_container) -> None:
    registry = ModelRegistry(pg_container, keep_retired=100)
    registry.register_model(_trained(pg_container, "xgboost"))
    shadow = registry.register_model(_trained(pg_container, "xgboost"))

    # Many promotions of the same shadow at once: one wins, the rest find no shadow.
    outcomes = _run_together(THREADS, lambda i: registry.promote_shadow_to_active("xgboost"))
    winners = [o for o in outcomes if not isinstance(o, Exception)]
    assert [w.model_id for w in winners] == [shadow]
    assert all(isinstance(o, NoShadowModelError) for o in outcomes if o not in winners)
    assert _count(pg_container, "ACTIVE") == 1 and _count(pg_container, "SHADOW") == 0

    # Registrations and promotions interleaved from many threads.
    def register_and_promote(i: int):  # type: ignore[no-untyped-def]
        registry.register_model(_trained(pg_container, "xgboost"))
        return registry.promote_shadow_to_active("xgboost")

    _run_together(THREADS, register_and_promote)
    assert _count(pg_container, "ACTIVE") == 1
    assert _count(pg_container, "SHADOW") <= 1
    versions = [int(m.version) for m in registry.list_models("xgboost", limit=100)]
    assert sorted(versions) == list(range(1, THREADS + 3))  # no version number taken twice

    # The history replays to the same single ACTIVE: every promotion retired its predecessor.
    live: set[str] = set()
    for change in registry.status_history("xgboost"):
        if change["new_status"] == "ACTIVE":
            assert not live, f"{change['model_id']} became ACTIVE while {live} still was"
            live.add(change["model_id"])
        elif change["old_status"] == "ACTIVE":
            live.discard(change["model_id"])
    assert live == {registry.get_active_model("xgboost").model_id}


def test_concurrent_job_starts_get_unique_sequential_ids(pg_container) -> None:
    from app.retraining import RetrainingOrchestrator

    orchestrator = RetrainingOrchestrator(pg_container)
    ids = _run_together(THREADS, lambda i: orchestrator.start_partial(["naive"], reason=f"test {i}"))
    assert len(set(ids)) == THREADS
    assert all(re.fullmatch(r"RTN-\d{8}-\d{3,}", job_id) for job_id in ids)
    assert sorted(int(j.rsplit("-", 1)[1]) for j in ids) == list(range(1, THREADS + 1))
    started = [job_id for job_id, _, _ in pg_container.dispatcher.started]
    assert sorted(started) == sorted(ids)


def test_concurrent_retention_runs_delete_each_folder_once(pg_container) -> None:
    keeping_all = ModelRegistry(pg_container, keep_retired=100)
    keeping_all.register_model(_trained(pg_container, "xgboost"))
    for _ in range(8):
        keeping_all.register_model(_trained(pg_container, "xgboost"))
        keeping_all.promote_shadow_to_active("xgboost")
    strict = ModelRegistry(pg_container, keep_retired=2)
    # A race here once failed a chord callback (two runs removing one folder): now serialised.
    runs = _run_together(THREADS, lambda i: strict.apply_retention("xgboost", raise_errors=True))
    deleted = [path for run in runs for path in run]
    assert len(deleted) == len(set(deleted)) == 8 + 1 - 1 - 2  # 9 versions: 1 ACTIVE, 2 kept
    assert all(not pg_container.artifacts.exists(path) for path in deleted)
    assert pg_container.artifacts.exists(strict.get_active_model("xgboost").file_path)
