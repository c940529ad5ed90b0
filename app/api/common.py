"""Helpers shared by the blueprints."""

from __future__ import annotations

from flask import current_app

from app.api.errors import ApiError
from app.core.container import Container


def container() -> Container:
    from app.api import container_of

    return container_of(current_app)


def not_found(kind: str, key: str) -> ApiError:
    return ApiError(404, f"{kind} {key!r} not found")
