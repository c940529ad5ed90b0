"""Human wording of times shared by the dashboard and the CLI ("2 days ago", "1h05m")."""

from __future__ import annotations

from datetime import datetime

from app.core.clock import utcnow


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """'2 days ago', 'in 5 days', 'never' (the specification's dashboard wording)."""
    if value is None:
        return "never"
    seconds = ((now or utcnow()) - value).total_seconds()
    span = abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if span >= size:
            n = int(span // size)
            text = f"{n} {unit}{'s' if n != 1 else ''}"
            break
    else:
        text = "less than a minute"
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def every(seconds: float | None) -> str:
    """An interval in the largest whole unit: '7 days', '6 hours', '1 minute', '30 seconds' (not '7.0 days')."""
    if seconds is None:
        return "-"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    if seconds >= 60:
        return duration(seconds)
    n = int(seconds)
    return f"{n} second{'s' if n != 1 else ''}"


def duration(seconds: int | float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}min"
    return f"{seconds}s"
