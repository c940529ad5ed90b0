"""The composition root: the one module that knows everything and wires it.

The API, the workers, the CLI and the tests build their container here. Nothing connects
at import time; prefork workers call `reset_container()` after the fork.

`app/` never names the Celery side. The entry points that run on it (the worker's
process start, the WSGI module, the CLI launcher in `workers/`) hand their dispatcher
factory in through `install_dispatcher_factory`; without one, work is only recorded
(`InlineDispatcher`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from app.core.artifacts import ArtifactStore
from app.core.container import Container
from app.core.db.session import make_engine, make_session_factory
from app.core.dispatch import Dispatcher, InlineDispatcher
from app.core.events import EventBus
from app.core.migrations import upgrade
from app.core.policy import PolicyStore, PolicyVocabulary
from app.core.settings import Settings, get_settings
from app.data_pipeline.timeframes import timeframe_ms
from app.forecasters import MODEL_TYPES
from app.handlers import register_handlers as _register_handlers

log = logging.getLogger(__name__)

__all__ = ["Container", "bootstrap", "get_container", "install_dispatcher_factory", "set_container"]

DispatcherFactory = Callable[[Settings], Dispatcher]
# What the policy checks need from above app.core: the model types and the data layer's timeframes.
POLICY_VOCABULARY = PolicyVocabulary(model_types=frozenset(MODEL_TYPES), timeframe_ms=timeframe_ms)


def _inline(_: Settings) -> Dispatcher:
    return InlineDispatcher()


_dispatcher_factory: DispatcherFactory = _inline


def install_dispatcher_factory(factory: DispatcherFactory) -> None:
    """Called once by an entry point (worker, WSGI, CLI launcher) with the Celery side's factory."""
    global _dispatcher_factory
    _dispatcher_factory = factory


def dispatcher_for(settings: Settings) -> Dispatcher:
    """The installed dispatcher, pointed at `settings` (eager Celery when embedded)."""
    return _dispatcher_factory(settings)


def bootstrap(
    settings: Settings | None = None,
    dispatcher: Dispatcher | None = None,
    *,
    migrate: bool = False,
    register_handlers: bool = True,
) -> Container:
    """Build a container from settings. `migrate=True` upgrades the schema first."""
    settings = settings or get_settings()
    if migrate:
        upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    session_factory = make_session_factory(engine)
    dispatcher = dispatcher or InlineDispatcher()
    bus = EventBus(
        session_factory,
        inline_delivery=settings.embedded,
        scheduler=dispatcher,
        is_postgres=engine.dialect.name == "postgresql",
    )
    container = Container(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        bus=bus,
        policy_store=PolicyStore(session_factory, POLICY_VOCABULARY),
        artifacts=ArtifactStore(settings.artifact_root),
        dispatcher=dispatcher,
    )
    if register_handlers:
        _register_handlers(container)
    return container


_container: Container | None = None
_container_lock = threading.Lock()


def get_container() -> Container:
    """The process-wide container, built on first use with the installed dispatcher."""
    global _container
    with _container_lock:
        if _container is None:
            settings = get_settings()
            _container = bootstrap(settings, _dispatcher_factory(settings))
        return _container


def set_container(container: Container | None) -> None:
    global _container
    with _container_lock:
        _container = container


def reset_container() -> None:
    """Forget the container (after a fork: connections must not be shared)."""
    global _container
    with _container_lock:
        if _container is not None:
            _container.engine.dispose(close=False)
        _container = None
