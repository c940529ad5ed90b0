"""The policy document: read it, change it (validated whole; refused with the field and reason)."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, jsonify, request

from app.api.common import container
from app.api.errors import ApiError
from app.api.openapi import operation
from app.api.schemas import PolicyOut, PolicyPatch
from app.core.policy import Policy, PolicyConflictError, PolicyValidationError

bp = Blueprint("policy", __name__, url_prefix="/api/policy")

_ETAG_VERSION = re.compile(r'^\s*(?:W/)?"?(\d{1,18})"?\s*$')


def _answer(version: int, policy: Policy) -> Any:
    body = PolicyOut(version=version, policy=policy.model_dump(mode="json")).model_dump(mode="json")
    return jsonify(body), 200, {"ETag": f'"{version}"'}


def _base_version() -> int | None:
    """The version named by `If-Match` (the ETag of a read), or None when the header is absent or `*`."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None
    match = _ETAG_VERSION.match(header)
    if match is None:
        reason = 'must be the ETag of GET /api/policy, e.g. "7"'
        raise ApiError(400, "invalid If-Match header", [{"field": "header.If-Match", "reason": reason}])
    return int(match.group(1))


@operation(bp, "", summary="The current policy and its version (also the ETag)", tag="policy", response=PolicyOut)
def get_policy() -> Any:
    return _answer(*container().policy_store.current())


@operation(
    bp, "", "PATCH", summary="Change policy fields; stored as a new version", tag="policy",
    body=PolicyPatch, response=PolicyOut, auth=True, conflict=True,
)  # fmt: skip
def patch_policy(body: PolicyPatch) -> Any:
    """Concurrent edits are applied one after the other. Send `If-Match: "<version>"` (the ETag of a
    read) to have the edit refused with 409 when another one was stored since. An empty patch
    stores nothing."""
    try:
        version, policy = container().policy_store.update(
            body.patch, author="api", comment=body.comment, base_version=_base_version()
        )
    except PolicyValidationError as exc:
        details = [{"field": f"body.patch.{e['field']}", "reason": e["reason"]} for e in exc.errors]
        raise ApiError(422, "invalid policy", details) from None
    except PolicyConflictError as exc:
        stale = {"base_version": exc.base_version, "current_version": exc.current_version}
        raise ApiError(409, f"the policy changed since version {exc.base_version}; read it again", stale) from None
    return _answer(version, policy)
