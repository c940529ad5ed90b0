"""Q-tables in the database, snapshots in the artifact store.

The live table of an agent is the `rl_q_values` rows under `rl_agent_state.version`. Every
change is one transaction that first locks the agent's `rl_agent_state` row (SELECT ...
FOR UPDATE on PostgreSQL; on SQLite the opening INSERT takes the database's write lock),
so updates from several worker processes serialise and none is lost. A trade is recorded
in `rl_applied_updates` (primary key rl_type + trade_id) in the same transaction: a trade
that arrives again finds its row and changes nothing. The row also keeps the experience
(version, state, action, reward), from which every saved version records the agent's winrate
and a random policy's on the same trades (`app.rl.baseline`).

Versions: the live table is version V until it is snapshotted; the snapshot freezes it as
V (a JSON file and an `rl_versions` row) and the live table goes on as V + 1. So the live
version is always above every saved one. A reset archives V (archived_at set, file kept)
and starts V + 1 empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, insert, select, true, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.db.models import PolicyVersion, RLAgentState, RLAppliedUpdate, RLQValue, RLVersion, SystemFlag
from app.core.system import TradingHalt, halt_of
from app.rl.baseline import Experience, WinrateComparison, compare_with_random
from app.rl.qlearning import QParams, decay_epsilon, q_update, stale_states, td_target
from app.rl.snapshot import encode_snapshot, parse_snapshot, snapshot_document

if TYPE_CHECKING:
    from app.core.container import Container


class VersionNotFoundError(LookupError):
    pass


@dataclass(frozen=True)
class AppliedUpdate:
    version: int
    q_value: float
    total_updates: int
    epsilon: float
    snapshot_version: int | None  # set when this update completed a snapshot interval


@dataclass(frozen=True)
class SelectionRead:
    """What a decision reads, in one round trip (`QTableStore.read_selection`)."""

    policy_version: int  # the newest stored policy version (0: none stored)
    agent_version: int | None  # None: the agent has no row yet
    epsilon: float | None
    q_row: dict[str, float]  # the state's row in the live table (actions never tried: absent)
    halt: TradingHalt | None


class QTableStore:
    """One agent's tables. Callers pass the open session, so events join the same transaction."""

    def __init__(self, container: Container, rl_type: str, file_prefix: str, actions: Sequence[str] = ()) -> None:
        self.container = container
        self.rl_type = rl_type
        self.file_prefix = file_prefix
        self.actions = tuple(actions)  # the agent's action set: a random policy draws from all of it

    # ------------------------------------------------------------------ agent row

    def lock_agent(self, session: Session, initial_epsilon: float) -> RLAgentState:
        """Create the agent row if missing, then lock it for the rest of the transaction."""
        next_version = (
            select(func.coalesce(func.max(RLVersion.version), 0) + 1)
            .where(RLVersion.rl_type == self.rl_type)
            .scalar_subquery()
        )
        values = {
            "rl_type": self.rl_type,
            "version": next_version,
            "total_updates": 0,
            "updates_since_snapshot": 0,
            "epsilon": initial_epsilon,
            "updated_at": utcnow(),
        }
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            session.execute(postgresql_insert(RLAgentState).values(**values).on_conflict_do_nothing())
        elif dialect == "sqlite":
            session.execute(sqlite_insert(RLAgentState).values(**values).on_conflict_do_nothing())
        elif session.get(RLAgentState, self.rl_type) is None:
            session.execute(insert(RLAgentState).values(**values))
        query = (
            select(RLAgentState)
            .where(RLAgentState.rl_type == self.rl_type)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return session.scalars(query).one()

    def read_selection(self, session: Session, state_key: str) -> SelectionRead:
        """The newest policy version, the agent's live version and epsilon, the state's Q row and
        the trading halt, in one statement: a decision is asked for every signal, so it reads
        like a prediction does (one round trip, not one per value)."""
        halted = (SystemFlag.name == "trading_halted", SystemFlag.enabled.is_(True))
        head = select(
            select(func.max(PolicyVersion.version)).scalar_subquery().label("policy_version"),
            select(func.count()).select_from(SystemFlag).where(*halted).scalar_subquery().label("halted"),
            select(SystemFlag.value).where(*halted).scalar_subquery().label("halt_value"),
            select(SystemFlag.updated_at).where(*halted).scalar_subquery().label("halt_updated"),
        ).subquery()
        agent = (
            select(RLAgentState.version.label("agent_version"), RLAgentState.epsilon)
            .where(RLAgentState.rl_type == self.rl_type)
            .subquery()
        )
        live_row = and_(
            RLQValue.rl_type == self.rl_type,
            RLQValue.version == agent.c.agent_version,
            RLQValue.state_key == state_key,
        )
        rows = session.execute(
            select(head, agent.c.agent_version, agent.c.epsilon, RLQValue.action, RLQValue.q_value).select_from(
                head.outerjoin(agent, true()).outerjoin(RLQValue, live_row)
            )
        ).all()
        first = rows[0]
        return SelectionRead(
            policy_version=int(first.policy_version or 0),
            agent_version=None if first.agent_version is None else int(first.agent_version),
            epsilon=None if first.epsilon is None else float(first.epsilon),
            q_row={row.action: float(row.q_value) for row in rows if row.action is not None},
            halt=halt_of(first.halt_value, first.halt_updated) if first.halted else None,
        )

    def read_agent(self, session: Session) -> RLAgentState | None:
        return session.get(RLAgentState, self.rl_type, populate_existing=True)

    # ------------------------------------------------------------------ reading

    def q_row(self, session: Session, version: int, state_key: str) -> dict[str, float]:
        rows = session.execute(
            select(RLQValue.action, RLQValue.q_value).where(
                RLQValue.rl_type == self.rl_type, RLQValue.version == version, RLQValue.state_key == state_key
            )
        )
        return {action: value for action, value in rows}

    def q_table(self, session: Session, version: int) -> dict[str, dict[str, float]]:
        table: dict[str, dict[str, float]] = {}
        rows = session.execute(
            select(RLQValue.state_key, RLQValue.action, RLQValue.q_value).where(
                RLQValue.rl_type == self.rl_type, RLQValue.version == version
            )
        )
        for state, action, value in rows:
            table.setdefault(state, {})[action] = value
        return table

    def visits(self, session: Session, version: int) -> int:
        total = session.scalar(
            select(func.coalesce(func.sum(RLQValue.visits), 0)).where(
                RLQValue.rl_type == self.rl_type, RLQValue.version == version
            )
        )
        return int(total or 0)

    def versions(self, session: Session) -> list[RLVersion]:
        return list(
            session.scalars(select(RLVersion).where(RLVersion.rl_type == self.rl_type).order_by(RLVersion.version))
        )

    # ------------------------------------------------------------------ writing

    def apply_update(
        self,
        session: Session,
        agent: RLAgentState,
        *,
        trade_id: str,
        state_key: str,
        action: str,
        reward: float,
        next_state_key: str | None,
        params: QParams,
        learning_rate: float,
        snapshot_interval: int,
    ) -> AppliedUpdate | None:
        """One trade's Q update on the locked `agent`; None when the trade was applied before."""
        if session.get(RLAppliedUpdate, (self.rl_type, trade_id)) is not None:
            return None
        session.add(
            RLAppliedUpdate(
                rl_type=self.rl_type,
                trade_id=trade_id,
                applied_at=utcnow(),
                reward=reward,
                version=agent.version,
                state_key=state_key,
                action=action,
            )
        )
        next_row = None if next_state_key is None else self.q_row(session, agent.version, next_state_key)
        row = session.get(RLQValue, (self.rl_type, agent.version, state_key, action))
        if row is None:
            row = RLQValue(
                rl_type=self.rl_type, version=agent.version, state_key=state_key, action=action, q_value=0.0, visits=0
            )
            session.add(row)
        row.q_value = q_update(row.q_value or 0.0, td_target(reward, next_row, params.discount), learning_rate)
        row.visits = (row.visits or 0) + 1
        agent.total_updates += 1
        agent.updates_since_snapshot += 1
        row.last_update = agent.total_updates
        agent.epsilon = decay_epsilon(agent.epsilon, params)
        agent.updated_at = utcnow()
        applied_version, q_value = agent.version, row.q_value
        snapshot_version = None
        if agent.updates_since_snapshot >= snapshot_interval:
            session.flush()
            snapshot_version = self.snapshot(session, agent, learning_rate, reason="interval").version
        return AppliedUpdate(applied_version, q_value, agent.total_updates, agent.epsilon, snapshot_version)

    def snapshot(
        self, session: Session, agent: RLAgentState, learning_rate: float, *, reason: str, archived: bool = False
    ) -> RLVersion:
        """Freeze the live table as its version; the live table goes on as the next version."""
        session.flush()
        version = agent.version
        q_table = self.q_table(session, version)
        now = utcnow()
        document = snapshot_document(
            version=version,
            created_at=now,
            q_table=q_table,
            total_updates=agent.total_updates,
            epsilon=agent.epsilon,
            learning_rate=learning_rate,
        )
        suffix = "_archived" if archived else ""
        stored = self.container.artifacts.put_bytes(
            f"rl/{self.rl_type}/{self.file_prefix}_v{version}{suffix}.json", encode_snapshot(document)
        )
        record = RLVersion(
            rl_type=self.rl_type,
            version=version,
            created_at=now,
            archived_at=now if archived else None,
            q_table_file=stored.path,
            sha256=stored.sha256,
            total_states=len(q_table),
            total_updates=agent.total_updates,
            epsilon=agent.epsilon,
            learning_rate=learning_rate,
            metadata_={"reason": reason, "size_bytes": stored.size_bytes, "q_values": sum(map(len, q_table.values()))},
        )
        comparison = self.winrate_against_random(session, version)
        if comparison is not None:
            record.metadata_ = {**(record.metadata_ or {}), **comparison.to_metadata()}
        session.add(record)
        if not archived:
            session.execute(
                update(RLQValue)
                .where(RLQValue.rl_type == self.rl_type, RLQValue.version == version)
                .values(version=version + 1)
            )
        agent.version = version + 1
        agent.updates_since_snapshot = 0
        agent.updated_at = now
        session.flush()
        return record

    def winrate_against_random(self, session: Session, version: int) -> WinrateComparison | None:
        """The agent's winrate and a random policy's (`app.rl.baseline`) on the trades `version` learned from.

        Those are the trades applied since the table last started empty: after the newest
        archived (reset) version below `version`, up to `version` itself.
        """
        if not self.actions:
            return None
        started_after = session.scalar(
            select(func.coalesce(func.max(RLVersion.version), 0)).where(
                RLVersion.rl_type == self.rl_type, RLVersion.archived_at.is_not(None), RLVersion.version < version
            )
        )
        rows = session.execute(
            select(RLAppliedUpdate.state_key, RLAppliedUpdate.action, RLAppliedUpdate.reward).where(
                RLAppliedUpdate.rl_type == self.rl_type,
                RLAppliedUpdate.version > (started_after or 0),
                RLAppliedUpdate.version <= version,
                RLAppliedUpdate.state_key.is_not(None),
                RLAppliedUpdate.action.is_not(None),
                RLAppliedUpdate.reward.is_not(None),
            )
        )
        return compare_with_random(
            (
                Experience(state, action, reward)
                for state, action, reward in rows
                if state and action and reward is not None
            ),
            self.actions,
        )

    def reset(self, session: Session, agent: RLAgentState, learning_rate: float, epsilon: float, reason: str) -> int:
        """Archive the live table and start the next version empty; returns the archived version."""
        archived = self.snapshot(session, agent, learning_rate, reason=reason, archived=True)
        session.execute(delete(RLQValue).where(RLQValue.rl_type == self.rl_type, RLQValue.version == archived.version))
        agent.total_updates = 0
        agent.updates_since_snapshot = 0
        agent.epsilon = epsilon
        return archived.version

    def read_snapshot(self, session: Session, version: int) -> tuple[RLVersion, dict[str, Any]]:
        record = session.scalars(
            select(RLVersion).where(RLVersion.rl_type == self.rl_type, RLVersion.version == version)
        ).first()
        if record is None:
            raise VersionNotFoundError(f"{self.rl_type}: no saved version {version}")
        data = self.container.artifacts.get_bytes(record.q_table_file, record.sha256)
        return record, parse_snapshot(data, record.q_table_file)

    def replace_live(self, session: Session, agent: RLAgentState, document: dict[str, Any]) -> None:
        """Make the snapshot `document` the live table (under the agent's current version)."""
        session.execute(delete(RLQValue).where(RLQValue.rl_type == self.rl_type, RLQValue.version == agent.version))
        total_updates = int(document["metadata"]["total_updates"])
        rows = [
            {
                "rl_type": self.rl_type,
                "version": agent.version,
                "state_key": state,
                "action": action,
                "q_value": float(value),
                "visits": 0,
                "last_update": total_updates,
            }
            for state, actions in document["q_table"].items()
            for action, value in actions.items()
        ]
        if rows:
            session.execute(insert(RLQValue), rows)
        agent.total_updates = total_updates
        agent.updates_since_snapshot = 0
        agent.epsilon = float(document["metadata"]["epsilon"])
        agent.updated_at = utcnow()

    def prune(self, session: Session, agent: RLAgentState, threshold: int) -> list[str]:
        """Delete the live states not updated within the last `threshold` updates."""
        last = session.execute(
            select(RLQValue.state_key, func.max(RLQValue.last_update))
            .where(RLQValue.rl_type == self.rl_type, RLQValue.version == agent.version)
            .group_by(RLQValue.state_key)
        )
        gone = stale_states({state: int(value or 0) for state, value in last}, agent.total_updates, threshold)
        for chunk_start in range(0, len(gone), 500):
            session.execute(
                delete(RLQValue).where(
                    RLQValue.rl_type == self.rl_type,
                    RLQValue.version == agent.version,
                    RLQValue.state_key.in_(gone[chunk_start : chunk_start + 500]),
                )
            )
        return gone
