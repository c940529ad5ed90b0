"""Real worker processes consume the real queues."""

from __future__ import annotations

import pytest

from tests.services import celery_worker

pytestmark = pytest.mark.integration


def test_tasks_reach_workers_on_each_queue(pg_container, worker_env, tmp_path) -> None:
    from tasks.maintenance import health_ping
    from workers.celery_app import configure

    configure(pg_container.settings)
    with (
        celery_worker(worker_env, queues="default,cpu", name="cpu-test@%h", log_path=tmp_path / "cpu.log"),
        celery_worker(worker_env, queues="gpu", pool="threads", name="gpu-test@%h", log_path=tmp_path / "gpu.log"),
    ):
        results = {q: health_ping.apply_async(queue=q).get(timeout=30) for q in ("default", "cpu", "gpu")}
    assert all(r["pid"] for r in results.values())
    # The gpu queue is served by a different process than the cpu queues.
    assert results["gpu"]["pid"] != results["cpu"]["pid"]
    assert results["default"]["pid"] == results["cpu"]["pid"]
