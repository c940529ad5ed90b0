"""An evaluation that reads only the pairs closed since the previous one.

A decision looks at the first n closed pairs of a test in time order (n: the latest look), and
`running.RunningStats` is all it needs of them. `shadow_evaluation_state` keeps those statistics
per test with the (timestamp, id) of the last pair they cover and the count and id sum of the
pairs up to there. An evaluation then, in one snapshot:

1. counts the test's closed pairs, and the closed pairs up to the kept (timestamp, id) with
   their id sum (one aggregate, no row leaves the server);
2. when count and id sum are the kept ones, the pairs up to there are the same set (pairs of a
   running test are only ever closed, never reopened or deleted: retention keeps a running
   test's pairs), and the statistics extend with the pairs after it, read in time order up to
   the latest look: none when the look has not moved;
3. otherwise (no state yet, a pair closed behind the kept position, another fee or time block, a look
   smaller than the pairs kept, or more new pairs than `MAX_STEP`), the first n pairs are read
   as a full evaluation reads them (`reads.closed_pairs`) and the statistics computed anew.

The state is written back when it covers other pairs than before. Two evaluations at once
write states that are each right for their snapshot; the later write stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from app.core.clock import utcnow
from app.core.db.models import ShadowEvaluationState, ShadowTestResult
from app.shadow_tester.reads import TIMESTAMP_COLUMN, closed_pairs, pair_columns, pairs_of_rows
from app.shadow_tester.running import RunningStats
from app.shadow_tester.stats import Thresholds

# Above this many new pairs a full read (binary COPY) is cheaper than reading rows after the mark.
MAX_STEP = 50_000


@dataclass(frozen=True)
class Evaluated:
    running: RunningStats  # of the first thresholds.decision_samples(total) closed pairs
    total: int  # every closed pair of the test
    pairs_read: int  # rows this evaluation read
    full: bool  # the statistics were computed anew from a full read


def running_stats(
    engine: Engine, shadow_model_id: str, thresholds: Thresholds, fee: float, block_us: float = 0.0
) -> Evaluated:
    """The running statistics of the test's first `thresholds.decision_samples(total)` closed pairs,
    from the kept state and the pairs after it where it still holds (see module doc); `block_us`:
    the paired test's time blocks (`stats.TimeBlocks`; 0: independent pairs)."""
    connection = engine.connect()
    if engine.dialect.name == "postgresql":
        connection = connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
    with connection, connection.begin():
        kept = connection.execute(
            select(ShadowEvaluationState).where(ShadowEvaluationState.shadow_model_id == shadow_model_id)
        ).first()
        step = _step(connection, shadow_model_id, kept, thresholds, fee, block_us) if kept is not None else None
    if step is not None:  # written once the reading snapshot is closed (SQLite: one writer at a time)
        evaluated, keep = step
        if keep is not None:
            _keep(engine, shadow_model_id, evaluated.running, *keep)
        return evaluated
    pairs = closed_pairs(engine, shadow_model_id, thresholds.decision_samples)
    c = pairs.columns
    running = RunningStats(fee, block_us=block_us).extended(
        c["active_direction"], c["shadow_direction"], c["realized_return"], c["active_confidence"],
        c["shadow_confidence"], c[TIMESTAMP_COLUMN],
    )  # fmt: skip
    _keep(engine, shadow_model_id, running, pairs.last, pairs.id_sum)
    return Evaluated(running, pairs.total, pairs.read, True)


def _step(connection: Connection, shadow_model_id: str, kept: Any, thresholds: Thresholds,
          fee: float, block_us: float) -> tuple[Evaluated, tuple[Any, int] | None] | None:  # fmt: skip
    """The kept statistics extended with the pairs after them, and the (mark, id sum) to keep with
    them when they moved; None when the kept statistics no longer hold."""
    running = RunningStats.from_json(kept.stats)
    if running.fee != fee or running.block_us != block_us or running.pairs != kept.pairs:
        return None
    result = ShadowTestResult
    mark = (kept.last_timestamp, kept.last_id)
    up_to = or_(result.timestamp < mark[0], and_(result.timestamp == mark[0], result.id <= mark[1]))
    closed = (result.shadow_model_id == shadow_model_id, result.realized_return.is_not(None))
    total, before, id_sum = connection.execute(
        select(func.count(), func.count().filter(up_to), func.sum(result.id).filter(up_to)).where(*closed)
    ).one()
    if before != kept.pairs or int(id_sum or 0) != kept.id_sum:
        return None
    more = thresholds.decision_samples(int(total)) - kept.pairs
    if more < 0 or more > MAX_STEP:
        return None
    if more == 0:
        return Evaluated(running, int(total), 0, False), None
    rows = connection.execute(
        select(*pair_columns()).where(*closed, ~up_to).order_by(result.timestamp, result.id).limit(more)
    ).all()
    new = pairs_of_rows(int(total), rows)
    c = new.columns
    extended = running.extended(c["active_direction"], c["shadow_direction"], c["realized_return"],
                                c["active_confidence"], c["shadow_confidence"], c[TIMESTAMP_COLUMN])  # fmt: skip
    return Evaluated(extended, int(total), new.read, False), (new.last, kept.id_sum + new.id_sum)


def _keep(engine: Engine, shadow_model_id: str, running: RunningStats, last: Any, id_sum: int) -> None:
    """Write (insert or replace) the test's state; nothing while no pair is closed."""
    if last is None:
        return
    values = {
        "shadow_model_id": shadow_model_id,
        "pairs": running.pairs,
        "id_sum": id_sum,
        "last_timestamp": last[0],
        "last_id": last[1],
        "stats": running.to_json(),
        "updated_at": utcnow(),
    }
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    statement = insert(ShadowEvaluationState).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=["shadow_model_id"], set_={k: v for k, v in values.items() if k != "shadow_model_id"}
    )
    with engine.begin() as conn:
        conn.execute(statement)


def forget(engine: Engine, shadow_model_id: str) -> None:
    """Drop the test's kept state: the next evaluation computes it anew."""
    with engine.begin() as conn:
        conn.execute(delete(ShadowEvaluationState).where(ShadowEvaluationState.shadow_model_id == shadow_model_id))
