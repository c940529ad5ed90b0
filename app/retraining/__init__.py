"""Retraining (specification `retraining.py`): jobs, the canvas's steps, and the orchestrator."""

from app.retraining.jobs import JobNotFoundError, JobRecord
from app.retraining.orchestrator import RetrainingOrchestrator

__all__ = ["JobNotFoundError", "JobRecord", "RetrainingOrchestrator"]
