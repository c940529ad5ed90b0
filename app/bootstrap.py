"""The one place that wires things: engine, sessions, event bus, policy, artifacts.

The API, the workers, the CLI and the tests all build their objects here. Nothing
connects at import time; prefork workers call `reset_container()` after the fork.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.artifacts import ArtifactStore
from app.db.session import make_engine, make_session_factory
from app.dispatcher import Dispatcher, InlineDispatcher
from app.events import EventBus
from app.policy import PolicyStore
from app.settings import Settings, get_settings

log = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    bus: EventBus
    policy_store: PolicyStore
    artifacts: ArtifactStore
    dispatcher: Dispatcher
    extras: dict[str, Any] = field(default_factory=dict)  # per-process caches (loaded models, ...)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on error."""
        with self.session_factory() as session, session.begin():
            yield session

    def dispose(self) -> None:
        for extra in self.extras.values():  # per-process caches that hold connections of their own
            if callable(getattr(extra, "dispose", None)):
                extra.dispose()
        self.engine.dispose()


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
        from app.migrations import upgrade

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
        policy_store=PolicyStore(session_factory),
        artifacts=ArtifactStore(settings.artifact_root),
        dispatcher=dispatcher,
    )
    if register_handlers:
        from app.handlers import register_handlers as _register

        _register(container)
    return container


_container: Container | None = None
_container_lock = threading.Lock()


def get_container() -> Container:
    """The process-wide container, built on first use."""
    global _container
    with _container_lock:
        if _container is None:
            _container = bootstrap(dispatcher=_default_dispatcher())
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


def _default_dispatcher() -> Dispatcher:
    # The Celery dispatcher is looked up by name so that app/ does not import workers/.
    import importlib

    try:
        module = importlib.import_module("workers.dispatcher")
    except ImportError:
        return InlineDispatcher()
    dispatcher: Dispatcher = module.CeleryDispatcher()
    return dispatcher


def celery_dispatcher_for(settings: Settings) -> Dispatcher:
    """Point this process's Celery client at `settings` (eager when embedded) and return its dispatcher.

    The one place where app/ reaches the Celery side, by name, for composition roots
    (the main run) that build their own container.
    """
    import importlib

    importlib.import_module("workers.celery_app").configure(settings)
    return _default_dispatcher()
