"""The policy stored as versioned rows: `PolicyStore` reads the latest and writes validated edits.

`PolicyStore.update` validates the whole document before writing; an invalid edit raises
`PolicyValidationError` naming the field and the reason, and nothing changes. Edits are
serialised (an advisory lock on PostgreSQL, a retry on SQLite), so concurrent edits of
different fields all land; an edit made against an older version than the stored one can
be refused instead (`base_version`, the API's `If-Match`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.core.clock import utcnow
from app.core.db.models import PolicyVersion
from app.core.policy.checks import PolicyVocabulary
from app.core.policy.schema import Policy, PolicyValidationError, deep_merge, validate_policy

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key of policy edits (the bytes of "policy"); held until the edit commits.
POLICY_LOCK_KEY = 0x706F6C696379
UNREADABLE_VERSIONS_SKIPPED = 50  # how far back a reader looks past stored versions it cannot use
SQLITE_EDIT_ATTEMPTS = 20
# The newest stored version: read by every `PolicyStore.get` (thousands an hour), built once.
_NEWEST_VERSION = select(func.max(PolicyVersion.version))


class PolicyConflictError(Exception):
    """The edit was made against `base_version`, but `current_version` is stored now."""

    def __init__(self, base_version: int, current_version: int) -> None:
        self.base_version = base_version
        self.current_version = current_version
        super().__init__(f"the policy is at version {current_version}, the edit was made against {base_version}")


def load_versioned(session: Session, vocabulary: PolicyVocabulary | None = None) -> tuple[int, Policy]:
    """The latest stored policy that is valid, and its version (0 and the defaults when none is stored).

    A stored version that no longer validates (written before a check existed, or by another
    tool) is skipped with a warning rather than failing every reader (beat, the API, the tasks).
    """
    rows = session.execute(
        select(PolicyVersion.version, PolicyVersion.document)
        .order_by(PolicyVersion.version.desc())
        .limit(UNREADABLE_VERSIONS_SKIPPED)
    ).all()
    for version, document in rows:
        try:
            return version, validate_policy(document, vocabulary)
        except PolicyValidationError as exc:
            log.warning("stored policy v%s is not usable, reading an older version: %s", version, exc)
    return 0, Policy()


def load_policy(session: Session, vocabulary: PolicyVocabulary | None = None) -> Policy:
    """The latest valid stored policy, read in the caller's session (defaults when none is stored)."""
    return load_versioned(session, vocabulary)[1]


class PolicyStore:
    """Reads and writes the versioned policy. `get` returns the latest valid version.

    `vocabulary` (from the composition root) lets the checks know the model types and timeframes.
    """

    def __init__(self, session_factory: sessionmaker[Session], vocabulary: PolicyVocabulary | None = None) -> None:
        self._session_factory = session_factory
        self._vocabulary = vocabulary
        # (newest stored version, the policy it resolves to): versions are immutable rows, so a
        # reader whose newest version is unchanged gets the validated policy without reading the
        # document again. Treat what `get` returns as read-only: it is shared.
        self._latest: tuple[int, Policy] | None = None

    def get(self, session: Session | None = None) -> Policy:
        if session is not None:
            return self._get(session)
        with self._session_factory() as own:
            return self._get(own)

    def current(self) -> tuple[int, Policy]:
        """The latest valid version and its policy, read together (the version goes in an ETag)."""
        with self._session_factory() as session:
            return load_versioned(session, self._vocabulary)

    def _get(self, session: Session) -> Policy:
        return self.resolve(session, session.scalar(_NEWEST_VERSION) or 0)

    def resolve(self, session: Session, newest: int) -> Policy:
        """The policy in force when `newest` is the newest stored version (read in `session`;
        the cached policy when `newest` is unchanged since the last read)."""
        cached = self._latest
        if cached is not None and cached[0] == newest:
            return cached[1]
        policy = load_policy(session, self._vocabulary)
        self._latest = (newest, policy)
        return policy

    def at_version(self, db: Session | Connection, version: int) -> Policy:
        """The stored policy of `version` (the defaults for 0: nothing stored yet), read in `db`."""
        if version == 0:
            return Policy()
        document = db.execute(select(PolicyVersion.document).where(PolicyVersion.version == version)).scalar()
        if document is None:
            raise LookupError(f"no policy version {version}")
        return Policy.model_validate(document)

    def current_version(self) -> int:
        with self._session_factory() as session:
            return session.scalar(_NEWEST_VERSION) or 0

    def update(
        self,
        patch: dict[str, Any],
        author: str = "operator",
        comment: str = "",
        base_version: int | None = None,
    ) -> tuple[int, Policy]:
        """Merge `patch` into the latest document, validate the whole, store as a new version.

        An empty patch stores nothing and returns the current version. With `base_version`, a
        stored version other than it raises `PolicyConflictError` and nothing is stored.
        """
        if not isinstance(patch, dict):
            raise PolicyValidationError([{"field": "(document)", "reason": "must be an object"}])
        for attempt in range(1, SQLITE_EDIT_ATTEMPTS + 1):
            try:
                return self._update(patch, author, comment, base_version)
            except (IntegrityError, OperationalError) as exc:
                # PostgreSQL edits wait on the advisory lock and never meet here; two SQLite edits
                # can still read the same latest version: the later one starts again from the new one.
                if self._is_postgres() or attempt == SQLITE_EDIT_ATTEMPTS:
                    raise
                log.info("policy edit met a concurrent one (%s); retrying", type(exc).__name__)
                time.sleep(0.01 * attempt)
        raise AssertionError("unreachable")

    def _update(self, patch: dict[str, Any], author: str, comment: str, base_version: int | None) -> tuple[int, Policy]:
        with self._session_factory() as session, session.begin():
            self._lock(session)
            latest = session.scalar(select(func.max(PolicyVersion.version))) or 0
            if base_version is not None and base_version != latest:
                raise PolicyConflictError(base_version, latest)
            _, current = load_versioned(session, self._vocabulary)
            if not patch:
                return latest, current
            policy = validate_policy(deep_merge(current.model_dump(mode="json"), patch), self._vocabulary)
            version = latest + 1
            session.add(
                PolicyVersion(
                    version=version,
                    document=policy.model_dump(mode="json"),
                    created_at=utcnow(),
                    author=author,
                    comment=comment,
                )
            )
        return version, policy

    def _is_postgres(self) -> bool:
        bind = self._session_factory.kw.get("bind")
        return bind is not None and bind.dialect.name == "postgresql"

    def _lock(self, session: Session) -> None:
        """Serialise policy edits until this transaction ends (PostgreSQL; SQLite retries instead)."""
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": POLICY_LOCK_KEY})

    def ensure_default(self) -> None:
        """Store the default policy as version 1 if no policy is stored yet."""
        with self._session_factory() as session, session.begin():
            self._lock(session)
            if session.scalar(select(func.count()).select_from(PolicyVersion)):
                return
            session.add(
                PolicyVersion(
                    version=1,
                    document=Policy().model_dump(mode="json"),
                    created_at=utcnow(),
                    author="system",
                    comment="defaults of the specification",
                )
            )

    def history(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._session_factory() as session:
            rows = session.scalars(select(PolicyVersion).order_by(PolicyVersion.version.desc()).limit(limit)).all()
            return [
                {"version": r.version, "created_at": r.created_at.isoformat(), "author": r.author, "comment": r.comment}
                for r in rows
            ]
