"""What every command group of the CLI shares: the process's container and JSON output."""

from __future__ import annotations

import json
from typing import Any

import click

from app.bootstrap import bootstrap, get_container, set_container
from app.core.container import Container
from app.core.migrations import upgrade


def container(migrate: bool = False) -> Container:
    """The process's container; `migrate` builds it after upgrading the schema (the embedded file may be new)."""
    if migrate:
        built = bootstrap(migrate=True)
        set_container(built)
        return built
    return get_container()


def data_container() -> Container:
    """The container, with the embedded SQLite schema upgraded first (it may not exist yet)."""
    current = get_container()
    if current.settings.embedded:
        upgrade(current.settings.database_url)
    return current


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))
