"""Run Alembic migrations from code (CLI `clm db upgrade`, bootstrap, tests), and compare a
database's revision with the code's head (`/health`)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from app.core.settings import REPO_ROOT

UPGRADE_COMMAND = "python -m workers.cli db upgrade"


def alembic_config(database_url: str) -> Config:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "schema"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


@lru_cache(maxsize=1)
def code_heads() -> tuple[str, ...]:
    """The Alembic head revisions of this code (read once: they change only with the code)."""
    script = ScriptDirectory.from_config(alembic_config(""))
    return tuple(sorted(script.get_heads()))


def schema_status(engine: Engine) -> dict[str, Any]:
    """The database's Alembic revision against the code's head: `ok` only when they are equal.

    `state` is `current`, `unmigrated` (no revision: `db upgrade` never ran on this database),
    `outdated` (an older revision) or `unknown` (a revision this code does not have: newer code
    migrated it)."""
    heads = code_heads()
    with engine.connect() as conn:
        current = tuple(sorted(MigrationContext.configure(conn).get_current_heads()))
    if current == heads:
        return {"ok": True, "state": "current", "revision": list(current), "head": list(heads)}
    if not current:
        state, message = "unmigrated", "the database has no schema"
    elif set(current) <= _known_revisions():
        state, message = "outdated", f"the database is at {', '.join(current)}, the code at {', '.join(heads)}"
    else:
        state, message = "unknown", f"the database is at {', '.join(current)}, which this code does not know"
    if state != "unknown":
        message += f": run migrations ({UPGRADE_COMMAND}, or make migrate)"
    return {"ok": False, "state": state, "revision": list(current), "head": list(heads), "error": message}


@lru_cache(maxsize=1)
def _known_revisions() -> frozenset[str]:
    script = ScriptDirectory.from_config(alembic_config(""))
    return frozenset(rev.revision for rev in script.walk_revisions())
