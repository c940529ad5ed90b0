"""The policy stored as versioned rows: `PolicyStore` reads the latest and writes validated edits.

`PolicyStore.update` validates the whole document before writing; an invalid edit raises
`PolicyValidationError` naming the field and the reason, and nothing changes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.clock import utcnow
from app.core.db.models import PolicyVersion
from app.core.policy.schema import Policy, PolicyValidationError, deep_merge, validate_policy


def load_policy(session: Session) -> Policy:
    """The latest stored policy, read in the caller's session (defaults when none is stored)."""
    row = session.scalars(select(PolicyVersion).order_by(PolicyVersion.version.desc()).limit(1)).first()
    return Policy() if row is None else Policy.model_validate(row.document)


class PolicyStore:
    """Reads and writes the versioned policy. `get` returns the latest valid version."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def get(self, session: Session | None = None) -> Policy:
        if session is not None:
            return self._get(session)
        with self._session_factory() as own:
            return self._get(own)

    def _get(self, session: Session) -> Policy:
        return load_policy(session)

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
            return session.scalar(select(func.max(PolicyVersion.version))) or 0

    def update(self, patch: dict[str, Any], author: str = "operator", comment: str = "") -> tuple[int, Policy]:
        """Merge `patch` into the latest document, validate, store as a new version."""
        if not isinstance(patch, dict):
            raise PolicyValidationError([{"field": "(document)", "reason": "must be an object"}])
        with self._session_factory() as session, session.begin():
            current = self._get(session).model_dump(mode="json")
            policy = validate_policy(deep_merge(current, patch))
            version = (session.scalar(select(func.max(PolicyVersion.version))) or 0) + 1
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

    def ensure_default(self) -> None:
        """Store the default policy as version 1 if no policy is stored yet."""
        with self._session_factory() as session, session.begin():
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
