"""System flags (trading halted, last ping) and the `system.ping` round trip."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db.models import SystemFlag
from app.core.topics import SystemPing

if TYPE_CHECKING:
    from app.core.container import Container


def set_flag(session: Session, name: str, enabled: bool, value: dict[str, Any] | None = None) -> None:
    row = session.get(SystemFlag, name)
    if row is None:
        row = SystemFlag(name=name, enabled=enabled, value=value or {}, updated_at=utcnow())
        session.add(row)
    row.enabled = enabled
    row.value = value or {}
    row.updated_at = utcnow()


def get_flag(session: Session, name: str) -> SystemFlag | None:
    return session.get(SystemFlag, name)


def record_ping(container: Container, event: dict[str, Any]) -> None:
    """Handler of `system.ping`: proves events travel from publisher to a handler."""
    with container.session() as session:
        ping = SystemPing.from_event(event)
        set_flag(session, "last_ping", True, {"event_id": event["id"], "payload": ping.payload()})
