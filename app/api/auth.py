"""Bearer-token guard for every endpoint that changes state (missing: 401, wrong: 403)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, request

from app.api.common import container_of
from app.api.errors import ApiError

F = TypeVar("F", bound=Callable[..., Any])


def check_token() -> None:
    """Raise the 401 or 403 of the current request unless it carries the configured token."""
    configured = container_of(current_app).settings.api_token
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not header[7:].strip():
        raise ApiError(401, "missing bearer token (Authorization: Bearer <token>)")
    if configured is None:
        raise ApiError(403, "no API token is configured on the server (set CLM_API_TOKEN)")
    if not hmac.compare_digest(header[7:].strip().encode(), configured.get_secret_value().encode()):
        raise ApiError(403, "invalid bearer token")


def require_token(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        check_token()
        return view(*args, **kwargs)

    wrapper.__requires_token__ = True  # type: ignore[attr-defined]  # the request guard authenticates first
    return wrapper  # type: ignore[return-value]
