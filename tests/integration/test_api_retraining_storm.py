"""Identical retraining requests at once, each from its own process, on the real PostgreSQL: one job."""

from __future__ import annotations

import multiprocessing

import pytest
from sqlalchemy import select

from app.api import create_app
from app.bootstrap import bootstrap
from app.core.db.models import RetrainingJob
from app.core.dispatch import InlineDispatcher
from app.core.settings import Settings
from tests.api_fixtures import TOKEN_HEADER

pytestmark = pytest.mark.integration

REQUESTS = 12
BODY = {"kind": "partial", "model_types": ["xgboost"], "reason": "storm"}


def _post_together(settings: Settings, body: dict, barrier, answers) -> None:  # type: ignore[no-untyped-def]
    container = bootstrap(settings, InlineDispatcher())  # its own engine and pool, after the fork
    client = create_app(container).test_client()
    barrier.wait()
    response = client.post("/api/jobs/retraining", json=body, headers=TOKEN_HEADER)
    answers.put((response.status_code, response.get_json()))
    container.dispose()


def _storm(settings: Settings, body: dict, count: int) -> list[tuple[int, dict]]:
    # forkserver, not fork: the test process has threads by now (earlier tests' pools and clients),
    # and a child forked while one of them holds a lock waits on it forever.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["app.api", "app.bootstrap"])
    barrier, answers = context.Barrier(count), context.Queue()
    processes = [context.Process(target=_post_together, args=(settings, body, barrier, answers)) for _ in range(count)]
    for process in processes:
        process.start()
    results = [answers.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    return results


def test_concurrent_identical_requests_start_one_job(pg_container, pg_settings) -> None:
    pg_container.policy_store.ensure_default()
    pg_container.engine.dispose()  # no pooled connection crosses the fork
    answers = _storm(pg_settings, BODY, REQUESTS)
    accepted = [body for status, body in answers if status == 202]
    refused = [body for status, body in answers if status == 409]
    assert len(accepted) == 1 and len(refused) == REQUESTS - 1, answers
    job_id = accepted[0]["job_id"]
    assert all(job_id in body["error"] for body in refused)
    # A full retraining while the partial runs: refused too.
    full = _storm(pg_settings, {"kind": "full"}, 2)
    assert [status for status, _ in full] == [409, 409]
    with pg_container.session() as session:
        assert list(session.scalars(select(RetrainingJob.job_id))) == [job_id]
