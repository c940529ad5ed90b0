"""Helpers shared by the blueprints."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app

from app.api.errors import ApiError
from app.bootstrap import get_container
from app.core.container import Container
from app.core.system import TradingHalt


def container_of(app: Flask) -> Container:
    """The app's container: the one it was built with, else the process-wide one (built lazily)."""
    container = app.extensions.get("clm_container")
    if container is None:
        container = get_container()
        app.extensions["clm_container"] = container
    return container


def container() -> Container:
    return container_of(current_app)


def not_found(kind: str, key: str) -> ApiError:
    return ApiError(404, f"{kind} {key!r} not found")


def halt_view(halt: TradingHalt | None) -> dict[str, Any]:
    """The `TradingHaltView` fields of an answer."""
    if halt is None:
        return {"trading_halted": False, "halt_reason": None, "halted_since": None}
    return {"trading_halted": True, "halt_reason": halt.reason, "halted_since": halt.since}
