from __future__ import annotations

from datetime import datetime, timedelta

from app.core.policy import Policy
from app.operations.schedule import PeriodicJob, SimulatedBeat, periodic_jobs


def test_periodic_jobs_take_their_intervals_from_the_policy() -> None:
    policy = Policy()
    policy.clm_config.drift_detection.check_interval_hours = 3
    jobs = {job.name: job for job in periodic_jobs(policy)}
    assert jobs["drift-check"].interval == timedelta(hours=3)
    assert jobs["full-retraining"].interval == timedelta(days=7)
    policy.clm_config.drift_detection.enabled = False
    assert "drift-check" not in {job.name for job in periodic_jobs(policy)}
    policy.clm_config.enabled = False
    assert periodic_jobs(policy) == []


def test_simulated_beat_runs_each_job_once_per_interval() -> None:
    ran: list[tuple[str, datetime]] = []

    def run(job: PeriodicJob, now: datetime) -> None:
        ran.append((job.name, now))

    beat = SimulatedBeat(run, only={"drift-check", "full-retraining"})
    policy = Policy()
    start = datetime(2024, 1, 1)
    for hour in range(0, 24 * 8 + 1):
        beat.tick(policy, start + timedelta(hours=hour))
    drift = [t for name, t in ran if name == "drift-check"]
    assert len(drift) == 32  # every 6 hours over 8 days, not at start-up
    assert drift[0] == start + timedelta(hours=6)
    assert [t for name, t in ran if name == "full-retraining"] == [start + timedelta(days=7)]
    # Stopping the CLM (policy) stops the simulated beat too.
    policy.clm_config.enabled = False
    before = len(ran)
    for hour in range(24 * 8 + 1, 24 * 20):
        beat.tick(policy, start + timedelta(hours=hour))
    assert len(ran) == before
