"""System flags (trading halted, last ping) and the `system.ping` round trip."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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


@dataclass(frozen=True)
class TradingHalt:
    """The `trading_halted` flag while it is set: why and since when (naive UTC)."""

    reason: str
    since: datetime | None


def trading_halt(session: Session) -> TradingHalt | None:
    """The current halt, or None while trading is allowed."""
    flag = session.get(SystemFlag, "trading_halted")
    if flag is None or not flag.enabled:
        return None
    return halt_of(flag.value, flag.updated_at)


def halt_of(value: dict[str, Any] | None, updated_at: datetime | None) -> TradingHalt:
    """The halt a set `trading_halted` flag stands for (its value names the reason and the time)."""
    value = value or {}
    try:
        since = datetime.fromisoformat(value["at"]) if value.get("at") else updated_at
    except ValueError:
        since = updated_at
    return TradingHalt(str(value.get("reason") or "trading halted"), since)


def record_ping(container: Container, event: dict[str, Any]) -> None:
    """Handler of `system.ping`: proves events travel from publisher to a handler."""
    with container.session() as session:
        ping = SystemPing.from_event(event)
        set_flag(session, "last_ping", True, {"event_id": event["id"], "payload": ping.payload()})
