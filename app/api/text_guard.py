"""Refuse NUL characters in request text before any of it reaches the database.

PostgreSQL text cannot hold U+0000: psycopg2 raises `ValueError` for a NUL in a bound
string and the server refuses `\\u0000` in JSONB, so a model id `a%00b` in a path, a query
value or a JSON string in a body ended as a 500 (on SQLite it passes, which is why the
schemathesis run on the embedded stack never saw it). One hook answers 422 naming the field.

The hook authenticates first (a state-changing endpoint answers 401 or 403 before its body is
read) and bounds how deeply a JSON body nests: 1,000 levels of brackets (2 KB) raised
`RecursionError` while parsing or walking the body, an unauthenticated 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Flask, current_app, request

from app.api.auth import check_token
from app.api.errors import ApiError

NUL = "\x00"
REASON = "contains a NUL character (U+0000), which cannot be stored"
MAX_JSON_DEPTH = 64  # the policy patch, the deepest body we take, nests 4 levels


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


def json_depth(value: Any) -> int:
    """How deeply `value` nests lists and objects (a scalar: 0), without recursion."""
    deepest, level = 0, [(value, 1)]
    while level:
        item, depth = level.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            level.extend((child, depth + 1) for child in children)
    return deepest


def _too_deep() -> ApiError:
    reason = f"nested deeper than {MAX_JSON_DEPTH} levels"
    return ApiError(400, "invalid JSON body", [{"field": "body", "reason": reason}])


def _json_body() -> Any:
    """The request's JSON body (None when absent or not JSON), refused when it nests too deeply."""
    if not (request.is_json and request.content_length):
        return None
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # the parser's own limit (about 1,000 levels): deeper than ours anyway
        raise _too_deep() from None
    if json_depth(body) > MAX_JSON_DEPTH:
        raise _too_deep()
    return body


def _request_nul_fields(body: Any) -> list[str]:
    fields = [f for name, value in (request.view_args or {}).items() for f in nul_fields(value, f"path.{name}")]
    for name, value in request.args.items(multi=True):
        fields.extend(f"query.{name}" for text in (name, value) if NUL in text)
    fields.extend(nul_fields(body, "body"))
    return fields


def register_text_guard(app: Flask) -> None:
    @app.before_request
    def _guard_request() -> None:
        view = current_app.view_functions.get(request.endpoint or "")
        if getattr(view, "__requires_token__", False):
            check_token()
        fields = _request_nul_fields(_json_body())
        if fields:
            raise ApiError(422, "invalid request", [{"field": f, "reason": REASON} for f in dict.fromkeys(fields)])
