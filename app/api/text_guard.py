"""Refuse NUL characters in request text before any of it reaches the database.

PostgreSQL text cannot hold U+0000: psycopg2 raises `ValueError` for a NUL in a bound
string and the server refuses `\\u0000` in JSONB, so a model id `a%00b` in a path, a query
value or a JSON string in a body ended as a 500 (on SQLite it passes, which is why the
schemathesis run on the embedded stack never saw it). One hook answers 422 naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Flask, request

from app.api.errors import ApiError

NUL = "\x00"
REASON = "contains a NUL character (U+0000), which cannot be stored"


def nul_fields(value: Any, where: str) -> Iterator[str]:
    """The dotted names of every string in `value` (keys included) that holds a NUL."""
    if isinstance(value, str):
        if NUL in value:
            yield where
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{where}.{key}"
            if isinstance(key, str) and NUL in key:
                yield name
            yield from nul_fields(item, name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from nul_fields(item, f"{where}.{index}")


def _request_nul_fields() -> list[str]:
    fields = [f for name, value in (request.view_args or {}).items() for f in nul_fields(value, f"path.{name}")]
    for name, value in request.args.items(multi=True):
        fields.extend(f"query.{name}" for text in (name, value) if NUL in text)
    if request.is_json and request.content_length:
        fields.extend(nul_fields(request.get_json(silent=True), "body"))
    return fields


def register_text_guard(app: Flask) -> None:
    @app.before_request
    def _refuse_nul() -> None:
        fields = _request_nul_fields()
        if fields:
            raise ApiError(422, "invalid request", [{"field": f, "reason": REASON} for f in dict.fromkeys(fields)])
