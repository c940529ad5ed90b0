"""The Q-table snapshot file, in the specification's format:

{"version": 7, "created_at": "2025-12-02T10:00:00",
 "q_table": {"TRENDING_HIGH_MEDIUM_GOOD": {"trend_follow": 4.5, ...}, ...},
 "metadata": {"total_updates": 12450, "epsilon": 0.05, "learning_rate": 0.1}}
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any


class SnapshotFormatError(ValueError):
    """A snapshot file that does not follow the format; the message names the field."""


def snapshot_document(
    *,
    version: int,
    created_at: datetime,
    q_table: dict[str, dict[str, float]],
    total_updates: int,
    epsilon: float,
    learning_rate: float,
) -> dict[str, Any]:
    return {
        "version": int(version),
        "created_at": created_at.replace(microsecond=0).isoformat(),
        "q_table": {state: dict(sorted(row.items())) for state, row in sorted(q_table.items())},
        "metadata": {"total_updates": int(total_updates), "epsilon": float(epsilon), "learning_rate": learning_rate},
    }


def encode_snapshot(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=1, allow_nan=False).encode()


def parse_snapshot(data: bytes, source: str) -> dict[str, Any]:
    """Decode and check a snapshot; errors name `source` and the offending field."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SnapshotFormatError(f"{source}: not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise SnapshotFormatError(f"{source}: expected an object at the top")
    for key in ("version", "created_at", "q_table", "metadata"):
        if key not in document:
            raise SnapshotFormatError(f"{source}: missing {key!r}")
    if not isinstance(document["version"], int):
        raise SnapshotFormatError(f"{source}: version must be an integer")
    if not isinstance(document["q_table"], dict):
        raise SnapshotFormatError(f"{source}: q_table must be an object")
    for state, row in document["q_table"].items():
        if not isinstance(row, dict):
            raise SnapshotFormatError(f"{source}: q_table[{state!r}] must be an object")
        for action, value in row.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise SnapshotFormatError(f"{source}: q_table[{state!r}][{action!r}] = {value!r} is not a number")
    metadata = document["metadata"]
    if not isinstance(metadata, dict):
        raise SnapshotFormatError(f"{source}: metadata must be an object")
    for key in ("total_updates", "epsilon", "learning_rate"):
        if not isinstance(metadata.get(key), int | float):
            raise SnapshotFormatError(f"{source}: metadata.{key} missing or not a number")
    return document
