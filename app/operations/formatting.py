"""Human wording of times shared by the dashboard and the CLI ("2 days ago", "1h05m")."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

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


# Nice steps of a duration axis, in the unit its labels use. Seconds and minutes step in
# clock-like amounts (15, 30); below a second and above a day, 1-2-5 steps.
_AXIS_UNITS: tuple[tuple[str, float, float, tuple[float, ...]], ...] = (
    # (label suffix, seconds per unit, axis top below which this unit is used, steps in the unit)
    ("s", 1.0, 180.0, (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 20, 30, 60)),
    ("min", 60.0, 2 * 3600.0, (0.5, 1, 2, 5, 10, 15, 20, 30, 60)),
    ("h", 3600.0, float("inf"), (0.5, 1, 2, 3, 6, 12, 24, 48, 120, 240, 480, 1200, 2400)),
)


def duration_axis(max_seconds: float, max_intervals: int = 4) -> dict[str, Any]:
    """The y-axis of a chart of durations up to `max_seconds`: `top` (seconds) and `ticks`,
    each `{"seconds", "label"}` from 0 to `top` in one nice step, at most `max_intervals`
    steps, labels in the one unit that fits the range ("0s 0.5s 1s 1.5s", "0min 10min 20min").
    """
    if max_intervals < 1:
        raise ValueError(f"max_intervals must be at least 1, got {max_intervals}")
    peak = float(max_seconds) if max_seconds and max_seconds > 0 and math.isfinite(max_seconds) else 1.0
    suffix, size, _, steps = next(unit for unit in _AXIS_UNITS if peak < unit[2])
    span = peak / size
    step = next((s for s in steps if math.ceil(span / s - 1e-9) <= max_intervals), None)
    if step is None:  # beyond the table: 1-2-5 steps of the unit
        magnitude = 10 ** math.floor(math.log10(span / max_intervals))
        step = next(m * magnitude for m in (1, 2, 5, 10) if math.ceil(span / (m * magnitude) - 1e-9) <= max_intervals)
    count = max(1, math.ceil(span / step - 1e-9))
    ticks = []
    for i in range(count + 1):
        value = round(i * step, 6)
        ticks.append({"seconds": round(value * size, 6), "label": f"{value:g}{suffix}"})
    return {"top": ticks[-1]["seconds"], "ticks": ticks}
