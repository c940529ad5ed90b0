"""System status: what the operator sees first (CLI `status`, API `/health`)."""

from __future__ import annotations

from typing import Any

import redis
from sqlalchemy import func, select, text

from app.core.container import Container
from app.core.db.models import Event, ModelRegistry, PolicyVersion, RetrainingJob
from app.core.migrations import schema_status


def database_health(container: Container) -> dict[str, Any]:
    try:
        with container.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return {"ok": False, "dialect": container.engine.dialect.name, "error": f"{type(exc).__name__}: {exc}"[:300]}
    # Reachable is not enough: an unmigrated or outdated schema fails every query that follows.
    try:
        schema = schema_status(container.engine)
    except Exception as exc:
        schema = {"ok": False, "state": "unreadable", "error": f"{type(exc).__name__}: {exc}"[:300]}
    health: dict[str, Any] = {"ok": schema["ok"], "dialect": container.engine.dialect.name, "schema": schema}
    if not schema["ok"]:
        health["error"] = schema["error"]
    return health


def broker_health(container: Container) -> dict[str, Any]:
    settings = container.settings
    if settings.embedded:
        return {"ok": True, "mode": "eager (embedded: no broker needed)"}
    url = settings.broker_url
    if not url.startswith(("redis://", "rediss://")):
        return {"ok": False, "error": f"unsupported broker scheme in {url.split('://')[0]}://"}
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1.5, socket_timeout=1.5)
        client.ping()
        return {"ok": True, "url": url.split("@")[-1]}
    except Exception as exc:
        return {"ok": False, "url": url.split("@")[-1], "error": f"{type(exc).__name__}: {exc}"[:300]}


def system_status(container: Container) -> dict[str, Any]:
    """Mode, storage, models by status, jobs by status, policy version, event backlog."""
    status: dict[str, Any] = {
        "mode": container.settings.mode.value,
        "database": database_health(container),
        "broker": broker_health(container),
        "artifact_root": container.artifacts.root,
    }
    if not status["database"]["ok"]:
        return status
    with container.session_factory() as session:
        status["policy_version"] = session.scalar(select(func.max(PolicyVersion.version))) or 0
        status["models"] = {
            f"{t}:{s}": n
            for t, s, n in session.execute(
                select(ModelRegistry.model_type, ModelRegistry.status, func.count()).group_by(
                    ModelRegistry.model_type, ModelRegistry.status
                )
            )
        }
        status["jobs"] = dict(
            session.execute(select(RetrainingJob.status, func.count()).group_by(RetrainingJob.status)).all()  # type: ignore[arg-type]
        )
        status["events"] = dict(session.execute(select(Event.status, func.count()).group_by(Event.status)).all())  # type: ignore[arg-type]
    return status
