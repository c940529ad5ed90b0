"""Query rows as a pandas frame."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd


def rows_frame(rows: Sequence[Any], columns: Sequence[str]) -> pd.DataFrame:
    """`rows` (SQLAlchemy Rows or tuples) as a frame of `columns`, through plain tuples: pandas converts
    a list of SQLAlchemy Rows many times slower."""
    return pd.DataFrame([tuple(r) for r in rows], columns=list(columns))
