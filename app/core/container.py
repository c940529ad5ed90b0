"""The container: the live objects a service needs (settings, database, bus, policy, artifacts, dispatcher).

It lives low in `app/` so that every service can name it without reaching the composition
root; `app.bootstrap` (the top) is the only module that builds one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.artifacts import ArtifactStore
from app.core.dispatch import Dispatcher
from app.core.events import EventBus
from app.core.policy import PolicyStore
from app.core.settings import Settings


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
