"""Retraining jobs: start, list, read (status, progress, per-model results), cancel."""

from __future__ import annotations

from flask import Blueprint

from app.api.common import container, not_found
from app.api.errors import ApiError
from app.api.openapi import operation
from app.api.schemas import CancelRequest, Job, JobAccepted, JobList, JobsQuery, RetrainingRequest
from app.clm.guard import request_manual_retraining
from app.retraining import JobNotFoundError, RetrainingOrchestrator
from app.retraining.jobs import CANCELLED
from app.retraining.spec import InvalidRetrainingSpecError, RetrainingSpec

bp = Blueprint("jobs", __name__, url_prefix="/api/jobs")


@operation(bp, "", summary="List retraining jobs, newest first", tag="jobs", query=JobsQuery, response=JobList)
def get_jobs(query: JobsQuery) -> JobList:
    records = RetrainingOrchestrator(container()).list_jobs(limit=query.limit, status=query.status)
    return JobList(jobs=[Job.of(r) for r in records])


@operation(bp, "/<job_id>", summary="One job: status, stage, progress, per-model results", tag="jobs", response=Job)
def get_job(job_id: str) -> Job:
    try:
        return Job.of(RetrainingOrchestrator(container()).get_job(job_id))
    except JobNotFoundError:
        raise not_found("job", job_id) from None


@operation(
    bp, "/retraining", "POST", summary="Start a full or partial retraining; 202 with the job id", tag="jobs",
    body=RetrainingRequest, response=JobAccepted, status=202, auth=True, conflict=True,
)  # fmt: skip
def post_retraining(body: RetrainingRequest) -> JobAccepted:
    """The CLM's storm guard applies: while a job for a requested model type runs or is within
    the policy's `retraining_cooldown_hours`, 409 naming it; `force: true` starts the job anyway
    and records the jobs it overrode on it (`forced_over`)."""
    c = container()
    data = body.data.model_dump(exclude_none=True) if body.data else None
    model_types = body.model_types if body.kind == "partial" else None
    try:  # refused now rather than failing on a worker later
        spec = RetrainingSpec.create(c.policy_store.get(), model_types, body.reason, data)
    except InvalidRetrainingSpecError as exc:
        details = [{"field": f"body.{e.field}", "reason": e.reason} for e in exc.errors]
        raise ApiError(422, "invalid body", details) from None
    orchestrator = RetrainingOrchestrator(c)
    decision = request_manual_retraining(c, spec, force=body.force)
    if decision.job_id is None:
        blocking = ", ".join(f"{job_id} ({model_type})" for model_type, job_id in decision.blocked_by.items())
        message = f"a retraining job is running or in cooldown for the requested models: {blocking}; "
        raise ApiError(409, message + "send force: true to start anyway", {"blocked_by": decision.blocked_by})
    job_id = decision.job_id
    status = orchestrator.get_job(job_id).status
    return JobAccepted(job_id=job_id, status=status, url=f"/api/jobs/{job_id}")


@operation(
    bp, "/<job_id>/cancel", "POST", summary="Cancel a running job (revokes its queued tasks)", tag="jobs",
    body=CancelRequest, response=Job, auth=True, conflict=True,
)  # fmt: skip
def post_cancel(job_id: str, body: CancelRequest) -> Job:
    c = container()
    try:
        record = RetrainingOrchestrator(c).cancel(job_id, body.reason)
    except JobNotFoundError:
        raise not_found("job", job_id) from None
    if record.status != CANCELLED:
        raise ApiError(409, f"job {job_id!r} already ended as {record.status}; nothing to cancel")
    return Job.of(record)
