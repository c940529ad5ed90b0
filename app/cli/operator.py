"""Operator commands of the CLI: CLM overview, jobs, retraining with a progress bar, models.

Registered on the `clm` group by `app.cli.main`. They use the same services as the API
(the registry, the orchestrator) against the database the settings point at.
"""

from __future__ import annotations

import getpass
import json
import sys
import time
from typing import Any

import click

from app.cli.common import container as _container
from app.cli.common import echo_json as _echo_json
from app.model_registry import ModelRegistry, RegistryError
from app.operations.alerts import Alert, UnknownAlert, acknowledge, current_alerts
from app.operations.formatting import ago, duration, every
from app.operations.read_models import clm_status, key_metrics, list_jobs, list_models, schedule_status
from app.retraining import JobNotFoundError, RetrainingOrchestrator
from app.retraining.jobs import CANCELLED, COMPLETED, FAILED, PARTIAL, progress_label
from app.retraining.spec import RetrainingSpec


def _job_line(job: dict[str, Any]) -> str:
    took = duration(job["duration_seconds"])
    error = f"  ({job['error_message']})" if job.get("error_message") else ""  # whole: the cause is often at the end
    return f"{job['job_id']:<22} {job['job_type']:<14} {job['status'].upper():<10} {took:>8}{error}"


@click.command("overview")
@click.option("--json", "as_json", is_flag=True, help="Print the whole status as JSON.")
def overview(as_json: bool) -> None:
    """The CLM dashboard in the terminal: retraining, models, shadow tests, RL, drift, alerts."""

    container = _container()
    with container.session() as session:
        status = clm_status(session, container.policy_store.get(session))
        alerts = current_alerts(session)
    if as_json:
        _echo_json(status | {"alerts": [a.view() for a in alerts]})
        return
    retraining = status["retraining"]
    last = retraining["last"]
    click.echo(f"Retraining status: {retraining['state']}")
    for job in retraining["running_jobs"]:
        click.echo(f"  {job['job_id']}: {job['stage'] or job['status']} {job['progress_pct'] or 0:.0f}%")
    click.echo(f"Last retraining:   {ago(last['completed_at'] or last['started_at']) if last else 'never'}")
    full = next((e for e in status["schedule"]["entries"] if e["name"] == "full-retraining"), None)
    if not retraining["schedule_enabled"]:
        next_label = "disabled"
    elif full and full["next_run_at"]:
        next_label = ago(full["next_run_at"])
    else:
        next_label = f"unknown: {status['schedule']['beat']['reason']}"
    click.echo(f"Next scheduled:    {next_label}")
    click.echo("Active models:")
    for model_type, entry in status["models"].items():
        active, shadow = entry["active"], entry["shadow"]
        line = f"  {model_type:<10} v{active['version']}" if active else f"  {model_type:<10} none"
        click.echo(line + (f"   shadow v{shadow['version']}" if shadow else ""))
    for test in status["shadow_tests"]:
        click.echo(
            f"Shadow {test['model_type']} v{test['version']}: {test['samples']}/{test['target_samples']} samples"
        )
    for agent in status["rl_agents"]:
        click.echo(f"RL {agent['rl_type']}: v{agent['version']} ({agent['states']} states, eps {agent['epsilon']:.3f})")
    drift = status["drift"]
    click.echo(f"Drift status:      {drift['status']} (last check {ago(drift['last_check'])})")
    click.echo(
        f"  checked:         {', '.join(drift['checked']) if drift['checked'] else drift['reason'] or 'nothing'}"
    )
    click.echo("Recent jobs:")
    for job in status["recent_jobs"][:5]:
        click.echo("  " + _job_line(job))
    for alert in alerts:
        click.echo("ALERT " + _alert_line(alert))


def _alert_line(alert: Alert) -> str:
    ack = alert.acknowledgement
    acked = f" [acknowledged by {ack.by} {ago(ack.at)}]" if ack else ""
    return f"{alert.severity.upper()} {alert.id}{acked}: {alert.message}"


@click.group("jobs")
def jobs() -> None:
    """Retraining jobs."""


@jobs.command("list")
@click.option("--status", default=None, help="Only jobs with this status.")
@click.option("--limit", default=20, show_default=True)
def jobs_list(status: str | None, limit: int) -> None:
    """Recent jobs, newest first: id, type, status, duration and the whole error (`jobs show` for the rest)."""
    with _container().session() as session:
        rows = list_jobs(session, status, limit)
    for job in rows:
        click.echo(_job_line(job))
    if not rows:
        click.echo("no jobs")


@jobs.command("show")
@click.argument("job_id")
def jobs_show(job_id: str) -> None:
    """One job as JSON: stage, progress, each model's status, worker, deliveries, error."""
    try:
        _echo_json(RetrainingOrchestrator(_container()).get_job(job_id).to_dict())
    except JobNotFoundError as exc:
        raise click.ClickException(str(exc)) from None


@jobs.command("cancel")
@click.argument("job_id")
@click.option("--reason", default="cancelled by operator", show_default=True)
def jobs_cancel(job_id: str, reason: str) -> None:
    """Close a running job as cancelled, reject what it staged and revoke its queued tasks."""
    try:
        record = RetrainingOrchestrator(_container()).cancel(job_id, reason)
    except JobNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{job_id}: {record.status}")


EXIT_BY_STATUS = {COMPLETED: 0, PARTIAL: 3, FAILED: 1, CANCELLED: 1}


@click.command("retrain")
@click.option("--model-type", "model_types", multiple=True, help="Partial retraining of these types (repeat).")
@click.option("--reason", default="manual (cli)", show_default=True)
@click.option("--spec", "spec_json", default=None, help='Dataset overrides as JSON, e.g. \'{"source": "store"}\'.')
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the job with a progress bar.")
@click.option("--timeout", default=6 * 3600.0, show_default=True, help="Seconds to follow the job.")
def retrain(model_types: tuple[str, ...], reason: str, spec_json: str | None, wait: bool, timeout: float) -> None:
    """Start a full (or, with --model-type, partial) retraining and follow it until it ends.

    Exit status: 0 completed, 3 partial, 1 failed or cancelled, 2 refused, 4 still running at --timeout.
    """

    container = _container()
    orchestrator = RetrainingOrchestrator(container)
    try:
        data = json.loads(spec_json) if spec_json else None
        if data is not None and not isinstance(data, dict):
            raise ValueError("--spec must be a JSON object")
        spec = RetrainingSpec.create(container.policy_store.get(), list(model_types) or None, reason, data)
        job_id = orchestrator.start(spec)
    except ValueError as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(2)
    click.echo(f"started {job_id}")
    if not wait:
        return
    job = orchestrator.get_job(job_id)
    deadline = time.monotonic() + timeout
    with click.progressbar(length=100, label=job_id, show_percent=True, file=sys.stderr) as bar:
        shown, shown_detail, shown_stages = 0, "", ""
        while True:
            job = orchestrator.get_job(job_id)
            progress = 100 if job.finished else int(job.progress_pct or 0)
            # inside each model: "nhits fit, steps 40 of 100; xgboost cv fold 2 of 5, trees 120 of 300"
            training = [  # the final fits and (a fanned-out job) the fold tasks under way
                (m, part["progress"])
                for m, e in job.models.items()
                for part in [e, *(e.get("folds") or {}).values()]
                if part.get("status") == "training" and part.get("progress")
            ]
            detail = "; ".join(f"{m} {progress_label(p)}" for m, p in training)
            stages = "; ".join(f"{m} {p.get('stage')}" for m, p in training)
            if progress > shown or detail != shown_detail:
                bar.label = f"{job_id} {detail}".strip()
                bar.update(max(0, progress - shown))
                # A log has no bar to redraw: one line per step (a percent or a stage, not each tree) instead.
                if not sys.stderr.isatty() and (progress > shown or stages != shown_stages):
                    click.echo(f" {job.stage or job.status} {progress}% {detail}".rstrip(), err=True)
                shown, shown_detail, shown_stages = max(shown, progress), detail, stages
            if job.finished or time.monotonic() > deadline:
                break
            time.sleep(1.0)
    click.echo(f"{job_id}: {job.status}" + (f" ({job.error_message})" if job.error_message else ""))
    for model_type, result in (job.models or {}).items():
        click.echo(f"  {model_type}: {result.get('status')} {result.get('model_id') or result.get('error') or ''}")
    sys.exit(EXIT_BY_STATUS.get(job.status, 4))


@click.command("models")
@click.option("--type", "model_type", default=None)
@click.option("--status", default=None)
@click.option("--limit", default=30, show_default=True)
def models(model_type: str | None, status: str | None, limit: int) -> None:
    """Registered models, newest first."""

    with _container().session() as session:
        rows = list_models(session, model_type, status, limit)
    for m in rows:
        metrics = " ".join(f"{k}={v:.3f}" for k, v in key_metrics(m["metrics"]).items())
        click.echo(f"{m['model_id']:<24} {m['status']:<9} {m['created_at']:%Y-%m-%d %H:%M}  {metrics}")
    if not rows:
        click.echo("no models")


@click.command("promote")
@click.argument("model_type")
@click.option("--reason", default="promoted by operator (cli)", show_default=True)
def promote(model_type: str, reason: str) -> None:
    """Promote the SHADOW model of MODEL_TYPE to ACTIVE."""

    try:
        record = ModelRegistry(_container()).promote_shadow_to_active(model_type, reason)
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{model_type}: v{record.version} ({record.model_id}) is ACTIVE")


@click.command("rollback")
@click.argument("model_type")
@click.argument("version")
def rollback(model_type: str, version: str) -> None:
    """Make VERSION of MODEL_TYPE ACTIVE again."""

    try:
        record = ModelRegistry(_container()).rollback(model_type, version)
    except RegistryError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{model_type}: v{record.version} ({record.model_id}) is ACTIVE")


@click.command("schedule")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def schedule(as_json: bool) -> None:
    """The beat schedule: each entry, how often, its last and next run (as beat last reported)."""
    c = _container()
    with c.session() as session:
        view = schedule_status(session, c.policy_store.get(session))
    if as_json:
        _echo_json(view)
        return
    beat = view["beat"]
    click.echo(f"beat: reported {ago(beat['seen_at'])}" if beat["running"] else f"beat: {beat['reason']}")
    click.echo(f"{'entry':<22} {'every':<12} {'last run':<22} next run")
    for e in view["entries"]:
        next_run = ago(e["next_run_at"]) if e["next_run_at"] else "-"
        click.echo(f"{e['name']:<22} {every(e['interval_seconds']):<12} {ago(e['last_run_at']):<22} {next_run}")
    if not view["entries"]:
        click.echo("no periodic work: the CLM is stopped (clm_config.enabled false)")


@click.group("alerts")
def alerts() -> None:
    """Alert conditions holding now; acknowledge one."""


@alerts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
def alerts_list(as_json: bool) -> None:
    """Every alert holding now, critical first: severity, id, acknowledgement and the whole message."""
    with _container().session() as session:
        rows = current_alerts(session)
    if as_json:
        _echo_json({"alerts": [a.view() for a in rows]})
        return
    for alert in rows:
        click.echo(_alert_line(alert))
    if not rows:
        click.echo("no alerts")


def _login_name() -> str:
    try:
        return getpass.getuser()
    except OSError:  # no login name (a container's uid without a passwd entry)
        return "cli"


@alerts.command("ack")
@click.argument("alert_id")
@click.option("--by", default=None, help="Who acknowledges it (default: the login name).")
@click.option("--note", default=None, help="A note kept with the acknowledgement.")
def alerts_ack(alert_id: str, by: str | None, note: str | None) -> None:
    """Acknowledge the alert ALERT_ID (the id `alerts list` shows); a repeat keeps the first acknowledgement."""
    try:
        result = acknowledge(_container(), alert_id, by or _login_name(), note)
    except UnknownAlert as exc:
        raise click.ClickException(str(exc)) from None
    ack = result.acknowledgement
    if result.recorded:
        click.echo(f"alert {result.alert_id} ({result.name}) acknowledged by {ack.by}")
    else:
        click.echo(f"alert {result.alert_id} ({result.name}) was already acknowledged by {ack.by} {ago(ack.at)}")


def register(group: click.Group) -> None:
    for command in (overview, jobs, retrain, models, promote, rollback, schedule, alerts):
        group.add_command(command)
