"""The policy document: read it, change it (validated whole; refused with the field and reason)."""

from __future__ import annotations

from flask import Blueprint

from app.api.common import container
from app.api.errors import ApiError
from app.api.openapi import operation
from app.api.schemas import PolicyOut, PolicyPatch
from app.core.policy import PolicyValidationError

bp = Blueprint("policy", __name__, url_prefix="/api/policy")


@operation(bp, "", summary="The current policy and its version", tag="policy", response=PolicyOut)
def get_policy() -> PolicyOut:
    store = container().policy_store
    return PolicyOut(version=store.current_version(), policy=store.get().model_dump(mode="json"))


@operation(
    bp, "", "PATCH", summary="Change policy fields; stored as a new version", tag="policy",
    body=PolicyPatch, response=PolicyOut, auth=True,
)  # fmt: skip
def patch_policy(body: PolicyPatch) -> PolicyOut:
    try:
        version, policy = container().policy_store.update(body.patch, author="api", comment=body.comment)
    except PolicyValidationError as exc:
        details = [{"field": f"body.patch.{e['field']}", "reason": e["reason"]} for e in exc.errors]
        raise ApiError(422, "invalid policy", details) from None
    return PolicyOut(version=version, policy=policy.model_dump(mode="json"))
