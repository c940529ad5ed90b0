"""Retention of the high-volume telemetry: events, prediction logs, finished shadow tests' pairs, RL decisions.

Every prediction writes two prediction logs, one shadow pair and one `ai.signal.generated`
event; at the live path's 200 requests/s that is about 70 million rows a day, which no
table should keep for ever. `apply_retention` deletes what the policy's
`clm_config.retention` no longer keeps:

- delivered events older than `events_days` (with their delivery records); pending and
  dead events stay, whatever their age;
- prediction logs older than `prediction_logs_days` (the policy refuses less than twice
  the prediction drift window, which reads that far back);
- shadow pairs older than `shadow_results_days` of tests that are over (the shadow model
  is no longer SHADOW); a running test keeps every pair, as its evaluation reads them all;
- RL decisions served over the API (`rl_decisions`, one row per decision request, so as
  many as the trading engine asks): those an outcome applied, and sizing decisions that
  allowed no trade (no outcome can apply them), older than `rl_decisions_days`; decisions
  an outcome may still name (not applied, not refused) older than
  `rl_unapplied_decisions_days` (at least a day: a trade still open names its decisions when
  it closes, and an outcome naming a deleted decision is refused as unknown). Most of these
  are decisions the engine did not act on, which no outcome will ever name.

Kept for ever: the registry and its status history, jobs, drift events, health logs,
policy versions, RL state (Q-tables and their versions).

Deletes go in batches of `batch_rows`, each its own short transaction (no long transaction
holding back vacuum), and each batch is the oldest rows of one key read in the order of an
index the tables already have: (topic, created_at) for events, (model_id, timestamp) for
prediction logs, (shadow_model_id, timestamp) for shadow pairs; RL decisions have no key, one
walk of (decided_at). On PostgreSQL a batch is one
statement deleting by physical row address (`ctid = ANY(ARRAY(...))`, a TID scan): the plain
`id IN (SELECT ... LIMIT n)` is planned as a hash join over a scan of the whole table, per
batch. A run stops after `max_seconds`; what is left waits for the next run (beat, every
`interval_hours`), and the result says so.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import TextClause, select, text
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db.models import ModelRegistry as ModelRow
from app.model_registry.records import SHADOW

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)

# The events' topics, read as a loose index scan over idx_events_topic_time (one probe per
# topic, not a scan of every event): portable SQL, PostgreSQL and SQLite.
_TOPICS = text(
    "WITH RECURSIVE topics(topic) AS ("
    " SELECT (SELECT min(topic) FROM events)"
    " UNION ALL"
    " SELECT (SELECT min(topic) FROM events WHERE topic > topics.topic) FROM topics WHERE topics.topic IS NOT NULL"
    ") SELECT topic FROM topics WHERE topic IS NOT NULL"
)


@dataclass(frozen=True)
class _Table:
    name: str
    key: str  # fixed per batch: the leading column of the index walked ("": none, the time index alone)
    time: str  # the index's second column: the batch is the oldest rows before the cutoff
    only: str = ""  # a further condition on the rows deleted
    rowid: str = "id"  # SQLite: the column a batch is chosen by
    label: str = ""  # the cutoff's name in the result, when two passes delete from one table

    def oldest(self, select_list: str) -> str:
        conditions = [f"{self.key} = :key"] if self.key else []
        conditions += [f"{self.time} < :cutoff"] + ([self.only] if self.only else [])
        return (
            f"SELECT {select_list} FROM {self.name} WHERE {' AND '.join(conditions)} ORDER BY {self.time} LIMIT :rows"
        )


EVENTS = _Table("events", "topic", "created_at", "status = 'delivered'")
PREDICTION_LOGS = _Table("prediction_logs", "model_id", "timestamp")
SHADOW_PAIRS = _Table("shadow_test_results", "shadow_model_id", "timestamp")
# Applied by an outcome, or refused (a sizing decision that allowed no trade: 409 for any outcome).
RL_DECISIONS_SETTLED = _Table(
    "rl_decisions", "", "decided_at", "(trade_id IS NOT NULL OR allowed = false)", rowid="rowid"
)
# Not applied yet, and an outcome may still apply them.
RL_DECISIONS_UNAPPLIED = _Table(
    "rl_decisions",
    "",
    "decided_at",
    "trade_id IS NULL AND allowed = true",
    rowid="rowid",
    label="rl_decisions_unapplied",
)


@functools.cache
def _batch_statements(table: _Table, postgres: bool) -> tuple[TextClause, ...]:
    """One batch's DELETE statements. PostgreSQL: one, returning (delivery records deleted, rows
    deleted). SQLite: by rowid, the delivery records first for events (the first DELETE takes
    the write lock, so both see one batch); their row counts are the same two numbers."""
    if not postgres:
        rows = text(f"DELETE FROM {table.name} WHERE {table.rowid} IN ({table.oldest(table.rowid)})")
        if table is not EVENTS:
            return (rows,)
        return text(f"DELETE FROM event_deliveries WHERE event_id IN ({table.oldest('id')})"), rows
    if table is not EVENTS:
        return (
            text(
                f"WITH gone AS (DELETE FROM {table.name} WHERE ctid = ANY(ARRAY({table.oldest('ctid')})) RETURNING 1) "
                "SELECT 0, count(*) FROM gone"
            ),
        )
    # The batch is chosen once (a CTE named twice is materialised); the foreign key from the
    # delivery records is checked at the statement's end, when both are gone.
    return (
        text(
            f"WITH doomed AS ({table.oldest('id, ctid')}), "
            "deliveries AS (DELETE FROM event_deliveries WHERE event_id = ANY(ARRAY(SELECT id FROM doomed)) "
            "RETURNING 1), "
            "gone AS (DELETE FROM events WHERE ctid = ANY(ARRAY(SELECT ctid FROM doomed)) RETURNING 1) "
            "SELECT (SELECT count(*) FROM deliveries), (SELECT count(*) FROM gone)"
        ),
    )


def _delete_batch(session: Session, table: _Table, params: dict[str, Any], postgres: bool) -> tuple[int, int]:
    """(delivery records deleted, rows deleted) by one batch."""
    statements = _batch_statements(table, postgres)
    if postgres:
        deliveries, rows = session.execute(statements[0], params).one()
        return int(deliveries), int(rows)
    counts = [int(session.execute(statement, params).rowcount) for statement in statements]  # type: ignore[attr-defined]
    return (counts[0] if len(counts) == 2 else 0), counts[-1]


@dataclass
class RetentionResult:
    deleted: dict[str, int] = field(
        default_factory=lambda: {
            "events": 0,
            "event_deliveries": 0,
            "prediction_logs": 0,
            "shadow_test_results": 0,
            "rl_decisions": 0,
        }
    )
    cutoffs: dict[str, str] = field(default_factory=dict)
    complete: bool = True  # False: the time budget ran out; the next run goes on
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def apply_retention(container: Container, now: datetime | None = None) -> RetentionResult:
    """Delete the telemetry the policy no longer keeps (see the module doc)."""
    config = container.policy_store.get().clm_config.retention
    result = RetentionResult()
    if not config.enabled:
        return result
    started = time.monotonic()
    deadline = started + config.max_seconds
    now = now or utcnow()
    postgres = container.engine.dialect.name == "postgresql"
    with container.session() as session:
        topics = list(session.scalars(_TOPICS))
        model_ids = list(session.scalars(select(ModelRow.model_id).order_by(ModelRow.model_id)))
        finished = list(
            session.scalars(select(ModelRow.model_id).where(ModelRow.status != SHADOW).order_by(ModelRow.model_id))
        )
    work = (
        (EVENTS, topics, config.events_days),
        (PREDICTION_LOGS, model_ids, config.prediction_logs_days),
        (SHADOW_PAIRS, finished, config.shadow_results_days),  # a running test keeps every pair
        (RL_DECISIONS_SETTLED, [None], config.rl_decisions_days),
        (RL_DECISIONS_UNAPPLIED, [None], config.rl_unapplied_decisions_days),
    )
    for table, keys, days in work:
        cutoff = now - timedelta(days=days)
        result.cutoffs[table.label or table.name] = cutoff.isoformat()
        for key in keys:
            deleted = config.batch_rows
            while deleted == config.batch_rows and result.complete:
                if time.monotonic() > deadline:
                    result.complete = False
                    break
                params = {"key": key, "cutoff": cutoff, "rows": config.batch_rows}
                with container.session() as session:
                    deliveries, deleted = _delete_batch(session, table, params, postgres)
                result.deleted["event_deliveries"] += deliveries
                result.deleted[table.name] += deleted
    result.seconds = time.monotonic() - started
    log.info(
        "retention: deleted %s in %.1f s%s",
        result.deleted,
        result.seconds,
        "" if result.complete else " (time budget spent: the next run goes on)",
    )
    return result
