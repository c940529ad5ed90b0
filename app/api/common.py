"""Helpers shared by the blueprints."""

from __future__ import annotations

from flask import Flask, current_app

from app.api.errors import ApiError
from app.bootstrap import get_container
from app.core.container import Container


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
