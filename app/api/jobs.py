"""Retraining jobs: start, list, read (status, progress, per-model results), cancel."""

from __future__ import annotations

from flask import Blueprint

from app.api.common import container, not_found
from app.api.errors import ApiError
from app.api.openapi import operation
from app.api.schemas import CancelRequest, Job, JobAccepted, JobList, JobsQuery, RetrainingRequest
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
    body=RetrainingRequest, response=JobAccepted, status=202, auth=True,
)  # fmt: skip
def post_retraining(body: RetrainingRequest) -> JobAccepted:
    c = container()
    data = body.data.model_dump(exclude_none=True) if body.data else None
    model_types = body.model_types if body.kind == "partial" else None
    try:  # refused now rather than failing on a worker later
        spec = RetrainingSpec.create(c.policy_store.get(), model_types, body.reason, data)
    except InvalidRetrainingSpecError as exc:
        details = [{"field": f"body.{e.field}", "reason": e.reason} for e in exc.errors]
        raise ApiError(422, "invalid body", details) from None
    orchestrator = RetrainingOrchestrator(c)
    job_id = orchestrator.start(spec)
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
