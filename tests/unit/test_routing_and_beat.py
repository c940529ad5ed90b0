from __future__ import annotations

from datetime import timedelta

from app.core.policy import Policy
from workers.beat import build_beat_schedule
from workers.celery_app import celery_app
from workers.routing import QUEUES, TASK_ROUTES, route_task


def test_every_task_has_a_route_to_a_known_queue() -> None:
    celery_app.loader.import_default_modules()
    ours = sorted(name for name in celery_app.tasks if not name.startswith("celery."))
    assert ours, "no tasks registered"
    unrouted = [name for name in ours if name not in TASK_ROUTES]
    assert unrouted == [], f"tasks without a route in workers/routing.py: {unrouted}"
    assert set(TASK_ROUTES.values()) <= set(QUEUES)
    for name in ours:
        assert route_task(name, (), {}, {}) == {"queue": TASK_ROUTES[name]}
    stale = [name for name in TASK_ROUTES if name not in celery_app.tasks]
    assert stale == [], f"routes for tasks that do not exist: {stale}"


def test_celery_configuration_guards_long_tasks() -> None:
    conf = celery_app.conf
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options["visibility_timeout"] >= 6 * 3600
    assert {q.name for q in conf.task_queues} == {"default", "cpu", "gpu"}


def test_beat_schedule_follows_the_policy() -> None:
    policy = Policy()
    schedule = build_beat_schedule(policy)
    assert schedule["event-delivery-sweep"]["task"] == "tasks.events.deliver_events"
    for entry in schedule.values():
        assert entry["task"] in TASK_ROUTES
    if "drift-check" in schedule:
        assert schedule["drift-check"]["schedule"] == timedelta(hours=6)
    if "full-retraining" in schedule:
        assert schedule["full-retraining"]["schedule"] == timedelta(days=7)

    stopped = policy.model_copy(deep=True)
    stopped.clm_config.enabled = False
    assert list(build_beat_schedule(stopped)) == ["event-delivery-sweep"]
