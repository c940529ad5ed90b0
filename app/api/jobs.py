"""Retraining jobs: list and read (status, progress, per-model results)."""

from __future__ import annotations

from flask import Blueprint

from app.api.common import container, not_found
from app.api.openapi import operation
from app.api.queries import job_dict, list_jobs
from app.api.schemas import Job, JobList, JobsQuery
from app.db.models import RetrainingJob

bp = Blueprint("jobs", __name__, url_prefix="/api/jobs")


@operation(bp, "", summary="List retraining jobs, newest first", tag="jobs", query=JobsQuery, response=JobList)
def get_jobs(query: JobsQuery) -> JobList:
    with container().session() as session:
        rows = list_jobs(session, query.status, query.limit)
    return JobList(jobs=[Job.model_validate(r) for r in rows])


@operation(bp, "/<job_id>", summary="One job: status, stage, progress, per-model results", tag="jobs", response=Job)
def get_job(job_id: str) -> Job:
    with container().session() as session:
        row = session.get(RetrainingJob, job_id)
        if row is None:
            raise not_found("job", job_id)
        return Job.model_validate(job_dict(row))
