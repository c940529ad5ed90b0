"""The operator's command line: the `clm` group and its small commands (launched by `python -m workers.cli`)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from app.bootstrap import get_container
from app.cli.common import container as _container
from app.cli.common import echo_json as _print
from app.cli.data import data as _data_commands
from app.cli.operator import register as _register_operator_commands
from app.cli.run import run_command
from app.core.migrations import upgrade
from app.core.policy import PolicyValidationError
from app.core.settings import get_settings
from app.operations.status import system_status


@click.group()
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
def cli(verbose: bool) -> None:
    """Quantum Trader CLM: the continuous-learning backend, for operators."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="heads", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply Alembic migrations to DATABASE_URL."""

    url = get_settings().database_url
    upgrade(url, revision)
    click.echo(f"database at {url.split('@')[-1]} upgraded to {revision}")


@cli.command()
def status() -> None:
    """Print the system status as JSON."""

    container = _container(migrate=get_container().settings.embedded)
    _print(system_status(container))


@cli.command()
@click.option("--seed", default=7, show_default=True, help="Seeds the market, the training and the RL agents.")
@click.option("--source", type=click.Choice(["synthetic", "files", "exchange"]), default="synthetic", show_default=True)
@click.option("--files", multiple=True, help="CSV/Parquet candle files or folders (source files): tests/data/ohlcv.")
@click.option("--symbols", default=None, help="Comma-separated symbols (default: 2 synthetic ones, or the files').")
@click.option("--days", type=float, default=None, help="Days replayed as live (default 12).")
@click.option("--report", "report_path", type=click.Path(), default=None, help="HTML report file.")
@click.option("--quiet", is_flag=True, help="Only the final summary's last lines.")
def run(
    seed: int,
    source: str,
    files: tuple[str, ...],
    symbols: str | None,
    days: float | None,
    report_path: str | None,
    quiet: bool,
) -> None:
    """The main job: initial training, then candles replayed as live through the whole system."""

    sys.exit(run_command(seed, source, list(files), symbols, days, report_path, quiet))


@cli.group()
def events() -> None:
    """The event outbox."""


@events.command("deliver")
def events_deliver() -> None:
    """Deliver every due event now, in this process."""
    report = _container().bus.deliver_pending()
    _print({"delivered": report.delivered, "failed": report.failed, "dead": report.dead, "errors": report.errors})


@events.command("requeue-dead")
def events_requeue_dead() -> None:
    """Give events that exhausted their attempts another round."""
    _print({"requeued": _container().bus.requeue_dead()})


@events.command("list")
@click.option("--topic", default="*", help="Wildcard pattern, e.g. 'clm.*'.")
@click.option("--limit", default=20, show_default=True)
def events_list(topic: str, limit: int) -> None:
    _print(_container().bus.recent(topic, limit))


@cli.group()
def policy() -> None:
    """The policy document."""


@policy.command("show")
def policy_show() -> None:
    _print(_container().policy_store.get().model_dump(mode="json"))


# VALUE may start with "-" (`policy set clm_config.x -0.5`): not an option.
@policy.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("path")
@click.argument("value")
@click.option("--comment", default="", help="Why the change.")
def policy_set(path: str, value: str, comment: str) -> None:
    """Set one field by dotted PATH to VALUE (JSON), e.g. clm_config.schedule_interval_days 3."""

    try:
        parsed: Any = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    patch: dict[str, Any] = {}
    node = patch
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = parsed
    try:
        version, _ = _container().policy_store.update(patch, author="cli", comment=comment)
    except PolicyValidationError as exc:
        for err in exc.errors:
            click.echo(f"refused: {err['field']}: {err['reason']}", err=True)
        sys.exit(2)
    click.echo(f"policy v{version} stored")


# Operator commands (overview, jobs, retrain, models, promote, rollback): app/cli/operator.py
_register_operator_commands(cli)
# Market data (import, synth, series): app/cli/data.py
cli.add_command(_data_commands)


def main() -> None:
    cli(prog_name="clm")
