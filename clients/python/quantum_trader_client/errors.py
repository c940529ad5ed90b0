"""Errors of the client: each carries the API's JSON error body (`error`, `status`, `details`)."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """Anything the client raises."""

    def __init__(self, message: str, status: int | None = None, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body or {}
        self.attempts = 1  # how many requests were sent (retries included)
        self.retry_after: float | None = None  # the API's Retry-After, seconds

    @property
    def details(self) -> list[dict[str, Any]]:
        """The API's per-field reasons (`field`, `reason`) of a 422 or 409."""
        details = self.body.get("details")
        return details if isinstance(details, list) else []


class ApiError(ClientError):
    """The API answered with an error status."""


class ValidationFailed(ApiError):
    """422: the request was refused; `details` names each field and the reason."""


class Unauthorized(ApiError):
    """401 (no token) or 403 (wrong token)."""


class NotFound(ApiError):
    """404."""


class Conflict(ApiError):
    """409: the state does not allow it (a decision already applied, no active model, ...)."""


class Unavailable(ClientError):
    """The API could not be reached or answered 502/503/504, after the retries the call allows."""


class TimedOut(Unavailable):
    """No answer within the timeout, after the retries the call allows."""


_BY_STATUS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
}


def error_for(status: int, body: dict[str, Any]) -> ClientError:
    message = f"{status}: {body.get('error', 'error')}"
    if status in (502, 503, 504):
        return Unavailable(message, status, body)
    return _BY_STATUS.get(status, ApiError)(message, status, body)
