"""The run's story read back from the `events` table: what happened when, in simulated time.

Only the topics that tell the story are read (the CLM's, the models', the shadow tests',
drift, regime, RL resets). A drift check's many findings become one line: how many, of
which kinds, the worst severity.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from app.core.db.models import Event

if TYPE_CHECKING:
    from app.core.container import Container

STORY_PATTERNS = ("clm.%", "model.%", "shadow.%", "drift.detected", "regime.changed", "rl.%.reset")
SKIPPED = ("model.training.started",)  # each is followed by its completed/failed line
SEVERITY_ORDER = ("LOW", "MEDIUM", "HIGH", "CRITICAL")


@dataclass(frozen=True)
class Milestone:
    at: datetime
    topic: str
    text: str
    payload: dict[str, Any]


def story_events(container: Container) -> list[dict[str, Any]]:
    """The story's events in order: id, topic, created_at (simulated), payload."""
    query = (
        select(Event.id, Event.topic, Event.created_at, Event.payload)
        .where(or_(*(Event.topic.like(p) for p in STORY_PATTERNS)))
        .where(Event.topic.not_in(SKIPPED))
        .order_by(Event.id)
    )
    with container.session_factory() as session:
        return [{"id": i, "topic": t, "at": at, "payload": p or {}} for i, t, at, p in session.execute(query)]


# Topics that repeat every check while a condition lasts: a run of them between two other
# milestones becomes one line ("x N, until ...").
REPEATING = ("drift.detected", "clm.retraining.suppressed", "model.performance.degraded", "clm.trading.halted")


def milestones(events: list[dict[str, Any]]) -> list[Milestone]:
    lines: list[Milestone] = []
    drift: list[dict[str, Any]] = []

    def flush() -> None:
        if drift:
            lines.append(_drift_line(drift))
            drift.clear()

    for event in events:
        if event["topic"] == "drift.detected":
            if drift and drift[0]["at"] != event["at"]:
                flush()
            drift.append(event)
            continue
        flush()
        lines.append(
            Milestone(event["at"], event["topic"], describe(event["topic"], event["payload"]), event["payload"])
        )
    flush()
    return _collapse(lines)


def _collapse(lines: list[Milestone]) -> list[Milestone]:
    out: list[Milestone] = []
    runs: dict[str, list[Milestone]] = {}

    def flush() -> None:
        for run in sorted(runs.values(), key=lambda r: r[0].at):
            first, last = run[0], run[-1]
            if len(run) == 1:
                out.append(first)
                continue
            text = f"{first.text}  [x{len(run)} until {last.at:%m-%d %H:%M}; last: {last.text}]"
            out.append(Milestone(first.at, first.topic, text, first.payload | {"repeats": len(run)}))
        runs.clear()

    for line in lines:
        if line.topic in REPEATING:
            runs.setdefault(line.topic, []).append(line)
            continue
        flush()
        out.append(line)
    flush()
    return out


def _drift_line(events: list[dict[str, Any]]) -> Milestone:
    kinds = Counter(str(e["payload"].get("drift_type", "?")) for e in events)
    severities = [str(e["payload"].get("severity", "LOW")).upper() for e in events]
    worst = max(severities, key=lambda s: SEVERITY_ORDER.index(s) if s in SEVERITY_ORDER else -1)
    types = sorted({str(e["payload"].get("model_type")) for e in events if e["payload"].get("model_type")})
    top = min(events, key=lambda e: _number(e["payload"].get("p_value"), 1.0))["payload"]
    detail = f"; strongest: {top.get('feature') or top.get('drift_type')}"
    if top.get("p_value") is not None:
        detail += f" p={_number(top.get('p_value'), 1.0):.2g}"
    text = (
        f"drift check found {len(events)} drift(s), worst {worst} "
        f"({', '.join(f'{k} x{n}' for k, n in sorted(kinds.items()))}) for {', '.join(types) or 'all'}{detail}"
    )
    return Milestone(events[0]["at"], "drift.detected", text, {"severity": worst, "count": len(events)})


def _number(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def describe(topic: str, p: dict[str, Any]) -> str:
    model = f"{p.get('model_type', '')} v{p.get('version', '?')}"
    match topic:
        case "clm.retraining.started":
            types = ", ".join(p.get("model_types") or [])
            return f"retraining {p.get('job_id')} started ({p.get('job_type')}, reason {p.get('reason')}): {types}"
        case "clm.retraining.completed":
            return f"retraining {p.get('job_id')} ended {p.get('status', '')} {_trained(p)}".rstrip()
        case "clm.retraining.suppressed":
            return f"retraining suppressed ({p.get('reason')}): blocked by {p.get('blocked_by')}"
        case "model.training.completed":
            return f"{p.get('model_type')} trained ({_short_metrics(p.get('metrics') or {})})"
        case "model.training.failed":
            return f"{p.get('model_type')} training FAILED: {p.get('error')}"
        case "model.registered":
            return f"{model} registered as {p.get('status')} ({p.get('model_id')})"
        case "model.promoted":
            return f"{model} promoted to ACTIVE ({p.get('reason') or ''})"
        case "model.retired":
            return f"{model} {p.get('status')}: {p.get('reason') or ''}"
        case "model.performance.degraded":
            return f"{p.get('model_type') or p.get('model_id')} performance degraded: {p.get('reasons') or p}"
        case "shadow.testing.started":
            return (
                f"shadow test of {p.get('model_type')} {p.get('shadow_model_id')} started (min {p.get('min_samples')})"
            )
        case "shadow.promotion.recommended":
            return f"shadow test recommends promoting {p.get('model_type')} {p.get('shadow_model_id')}"
        case "shadow.promoted":
            return f"{p.get('model_type')} {p.get('model_id')} promoted by its shadow test"
        case "regime.changed":
            return f"regime of {p.get('symbol')} changed {p.get('old')} -> {p.get('new')}"
        case "rl.meta.reset" | "rl.sizing.reset":
            agent = "meta strategy" if topic.startswith("rl.meta") else "position sizing"
            return (
                f"RL {agent} reset: v{p.get('old_version')} archived, v{p.get('new_version')} fresh "
                f"(epsilon {p.get('epsilon')}, {p.get('reason')})"
            )
        case "clm.rl.reset":
            return f"CLM reset the RL agents ({p.get('reason')})"
        case "clm.model.promoted":
            return f"CLM: {p.get('model_type')} {p.get('model_id')} is live"
        case "clm.trading.halted" | "clm.trading.resumed":
            return f"{topic}: {p.get('reason')}"
    return f"{topic} {p}"


def _trained(p: dict[str, Any]) -> str:
    trained = p.get("models_trained")
    if isinstance(trained, dict):
        return (
            "(" + ", ".join(f"{m}: {v.get('status') if isinstance(v, dict) else v}" for m, v in trained.items()) + ")"
        )
    return f"({trained})" if trained else ""


def _short_metrics(metrics: dict[str, Any]) -> str:
    test = metrics.get("test", metrics)
    keys = ("directional_accuracy", "rmse", "sharpe")
    return ", ".join(f"{k} {test[k]:.3g}" for k in keys if isinstance(test.get(k), int | float))
