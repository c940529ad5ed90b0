"""The Celery application (`celery -A workers.celery_app ...`).

Connections are made after the fork: each worker process resets the container in
`worker_process_init`, so no database connection is shared between processes.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, signals

from app.bootstrap import install_dispatcher_factory, reset_container
from app.core.clock import install_clock
from app.core.dispatch import Dispatcher
from app.core.settings import Settings, get_settings
from app.model_training.service import resolve_device
from workers.celery_dispatcher import CeleryDispatcher

celery_app = Celery("quantum_trader_clm")
celery_app.config_from_object("celeryconfig")
# Tasks live in tasks/; listed explicitly rather than discovered (STYLE 5).
celery_app.conf.include = [
    "tasks.alerts",
    "tasks.data",
    "tasks.events",
    "tasks.drift",
    "tasks.maintenance",
    "tasks.regime",
    "tasks.retraining",
    "tasks.rl",
    "tasks.shadow",
    "tasks.supervisor",
]
app = celery_app  # `celery -A workers.celery_app` finds `app`

log = logging.getLogger(__name__)


def _celery_dispatcher(settings: Settings) -> Dispatcher:
    return CeleryDispatcher(configure(settings))


def install() -> None:
    """Wire this process to the Celery side: the dispatcher factory, and a replay's shared clock if set."""
    install_dispatcher_factory(_celery_dispatcher)
    install_clock(get_settings().simulated_clock_file)


install()


@signals.worker_process_init.connect
def _after_fork(**_: Any) -> None:
    reset_container()


@signals.celeryd_after_setup.connect
def _check_gpu_pool(sender: str, instance: Any, **_: Any) -> None:
    """The gpu queue runs `--pool threads --concurrency 1`: CUDA cannot be re-initialised in a
    forked child (prefork refused), and with solo the training blocks the worker's only thread,
    so it answers no ping or heartbeat while it trains and Flower shows it offline."""
    queues = (
        {q.name for q in instance.app.amqp.queues.consume_from.values()}
        if instance.app.amqp.queues.consume_from
        else set()
    )
    pool = getattr(instance, "pool_cls", None)
    pool_name = getattr(pool, "__module__", str(pool))
    if "gpu" not in queues:
        return
    if "prefork" in pool_name:
        raise RuntimeError("the gpu queue must run with --pool threads --concurrency 1 (CUDA does not survive fork)")
    if "solo" in pool_name:
        log.warning("gpu queue on the solo pool: this worker answers no ping while it trains; use --pool threads")
    elif getattr(instance, "concurrency", 1) != 1:
        log.warning("gpu queue with %s threads: trainings will share the device", instance.concurrency)
    setting = get_settings().device
    if resolve_device(setting) == "cpu":
        # Said once, at start: otherwise a slow neural training on the CPU looks like a hang.
        log.warning("gpu queue without a CUDA device (CLM_DEVICE=%s): neural models will train on the CPU", setting)


def configure(settings: Any) -> Celery:
    """Point this process's Celery client at `settings` (tests, CLI against a stack)."""
    celery_app.conf.update(
        broker_url=settings.broker_url,
        result_backend=settings.result_backend,
        task_always_eager=settings.embedded,
    )
    # Celery caches its connection pool, producer pool and result backend on first use;
    # drop the references so the next send and result read look them up for the new URLs
    # (kombu keeps its pools per URL, so an unchanged URL gets its open pool back).
    celery_app._after_fork()
    celery_app._backend_cache = None
    if hasattr(celery_app._local, "backend"):
        del celery_app._local.backend
    return celery_app
