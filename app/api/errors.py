"""Every error is JSON with a clear message; no stack trace ever leaves the API."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from werkzeug.exceptions import HTTPException

from app.core.migrations import UPGRADE_COMMAND

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with an HTTP status and a JSON body."""

    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


def validation_details(exc: ValidationError) -> list[dict[str, str]]:
    return [{"field": ".".join(str(p) for p in err["loc"]) or "(body)", "reason": err["msg"]} for err in exc.errors()]


def database_unavailable(exc: OperationalError) -> bool:
    """A passing condition of the database, not a fault of the request or the code: the
    connection was lost or refused (PostgreSQL SQLSTATE classes 08, 53, 57 or no code at
    all, which psycopg2 gives a refused connection), or SQLite was locked or busy."""
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if type(orig).__module__.startswith("psycopg2"):
        code = getattr(orig, "pgcode", None)
        return code is None or code[:2] in ("08", "53", "57")
    return "locked" in str(orig) or "busy" in str(orig)


def schema_missing(exc: DBAPIError) -> bool:
    """A table or column the code expects is not there: the database was never migrated, or
    is behind the code (PostgreSQL SQLSTATE 42P01 undefined table, 42703 undefined column;
    SQLite's "no such table/column")."""
    orig = exc.orig
    if type(orig).__module__.startswith("psycopg2"):
        return getattr(orig, "pgcode", None) in ("42P01", "42703")
    return "no such table" in str(orig) or "no such column" in str(orig)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Any:
        body: dict[str, Any] = {"error": exc.message, "status": exc.status}
        if exc.details is not None:
            body["details"] = exc.details
        return jsonify(body), exc.status

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError) -> Any:
        return jsonify({"error": "invalid request", "status": 422, "details": validation_details(exc)}), 422

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        status = exc.code or 500
        # Keep the exception's own headers (a 405's Allow, RFC 9110 15.5.6), not its HTML content type.
        headers = [(name, value) for name, value in exc.get_headers() if name.lower() != "content-type"]
        return jsonify({"error": exc.description or exc.name, "status": status}), status, headers

    def _schema_missing(exc: DBAPIError) -> Any:
        log.error("database schema missing or outdated: %s", str(exc.orig).strip().splitlines()[0])
        message = f"the database schema is missing or outdated: run migrations ({UPGRADE_COMMAND}, or make migrate)"
        return jsonify({"error": message, "status": 500, "kind": "SchemaMissing"}), 500

    @app.errorhandler(ProgrammingError)
    def _programming_error(exc: ProgrammingError) -> Any:
        return _schema_missing(exc) if schema_missing(exc) else _unexpected(exc)

    @app.errorhandler(OperationalError)
    def _database_unavailable(exc: OperationalError) -> Any:
        if schema_missing(exc):
            return _schema_missing(exc)
        if not database_unavailable(exc):
            return _unexpected(exc)
        # The database refused or lost the connection (down, restarting, too many clients) or
        # cancelled the statement: the request may succeed later, nothing is wrong with it.
        log.warning("database unavailable: %s", str(exc.orig).strip().splitlines()[0] if exc.orig else exc)
        body = {"error": "database unavailable, try again shortly", "status": 503, "kind": type(exc.orig).__name__}
        return jsonify(body), 503, {"Retry-After": "5"}

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        log.exception("unhandled error in API")
        return jsonify({"error": "internal error", "status": 500, "kind": type(exc).__name__}), 500
