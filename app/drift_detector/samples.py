"""Prediction logs read by a drift check: a window's rows, or an evenly spaced sample of them.

At 200 predictions/s a 30-day window holds about 500 million logs per model. No check reads
them all, nor should it: a test on that many samples finds any difference significant, and
predictions repeat within a candle (the live path computes them once per candle). So, per
model, on PostgreSQL:

- a bounded count first (at most `max_rows + 1` index entries of (model_id, timestamp));
- up to `max_rows` logs in the window: all of them;
- more: the logs' time span in the window is cut into `max_rows` equal slices and each
  slice gives its first log (one index descent each), an evenly spaced sample in time.
  Logs that come in bursts leave most slices empty: then the slicing is refined, 4x at a
  time, until at least half of `max_rows` is found (at most 64 x `max_rows` slices), and a
  sample grown past `max_rows` is thinned evenly.

SQLite (the embedded mode, small tables) reads the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.core.db.frames import rows_frame
from app.core.db.models import PredictionLog

_CLOSED = " AND realized_return IS NOT NULL"
_MAX_REFINEMENT = 64  # at most 64 x max_rows slices (index descents) per model and window


def prediction_sample(
    session: Session,
    model_ids: Sequence[str],
    start: datetime,
    end: datetime,
    columns: Sequence[str],
    max_rows: int,
    closed_only: bool = False,
) -> pd.DataFrame:
    """`columns` of the models' logs with `start <= timestamp < end` (only those with an outcome
    if `closed_only`): all of them, or per model an evenly spaced sample of `max_rows`."""
    unknown = [c for c in columns if c not in PredictionLog.__table__.c]
    if unknown:
        raise ValueError(f"prediction_sample: no such prediction_logs columns {unknown}")
    if session.get_bind().dialect.name != "postgresql":
        where = [PredictionLog.model_id.in_(list(model_ids)), PredictionLog.timestamp >= start]
        where += [PredictionLog.timestamp < end]
        if closed_only:
            where.append(PredictionLog.realized_return.is_not(None))
        rows = session.execute(select(*(PredictionLog.__table__.c[c] for c in columns)).where(*where)).all()
        return rows_frame(rows, columns)
    names = ", ".join(columns)
    window = "model_id = :model_id AND timestamp >= :start AND timestamp < :end" + (_CLOSED if closed_only else "")
    bounded = text(f"SELECT count(*) FROM (SELECT 1 FROM prediction_logs WHERE {window} LIMIT :limit) w")
    everything = text(f"SELECT {names} FROM prediction_logs WHERE {window}")
    span = text(
        f"SELECT (SELECT timestamp FROM prediction_logs WHERE {window} ORDER BY timestamp LIMIT 1),"
        f" (SELECT timestamp FROM prediction_logs WHERE {window} ORDER BY timestamp DESC LIMIT 1)"
    )
    spaced = text(
        f"SELECT p.* FROM generate_series(0, :slices - 1) AS s(i) CROSS JOIN LATERAL ("
        f" SELECT {names} FROM prediction_logs"
        " WHERE model_id = :model_id"
        " AND timestamp >= :first + (:last - :first) * (s.i::float8 / :slices)"
        " AND timestamp < :first + (:last - :first) * ((s.i + 1)::float8 / :slices)"
        f"{_CLOSED if closed_only else ''}"
        " ORDER BY timestamp LIMIT 1) p"
    )
    frames = []
    for model_id in model_ids:
        params: dict[str, Any] = {"model_id": model_id, "start": start, "end": end}
        if session.execute(bounded, params | {"limit": max_rows + 1}).scalar_one() <= max_rows:
            frames.append(rows_frame(session.execute(everything, params).all(), columns))
            continue
        first, last = session.execute(span, params).one()
        # Slices over the logs' own time span; where they come in bursts, most slices are
        # empty, so the slicing is refined (4x at a time) until half the budget is filled.
        slices = max_rows
        while True:
            spacing = {"first": first, "last": last + timedelta(microseconds=1), "slices": slices}
            sample = rows_frame(session.execute(spaced, params | spacing).all(), columns)
            if len(sample) >= max_rows // 2 or slices >= _MAX_REFINEMENT * max_rows:
                break
            slices *= 4
        if len(sample) > max_rows:
            sample = sample.iloc[np.linspace(0, len(sample) - 1, max_rows).round().astype(int)]
        frames.append(sample)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(columns))
