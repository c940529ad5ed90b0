"""A large dataset prepared in pieces: each a group of symbols (features and labels are per symbol),
stored by its content hash, then joined into the very dataset one piece would have built.

A piece is the time-major rows of its symbols, written as Parquet under
`datasets/<id>/pieces/<sha256>.parquet`; the join reads each piece by path and checks it
against its sha256, concatenates them in the spec's symbol order and sorts by time (stable),
so the joined frame, and its Parquet bytes and content hash, equal the one-piece build.
Only sources that give each symbol's candles independently of the others are split.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from app.core.artifacts import sha256_bytes
from app.data_pipeline.dataset import (
    DatasetInfo,
    DatasetSpec,
    existing_dataset,
    parquet_bytes,
    store_dataset,
    symbol_frame,
    time_major,
)

if TYPE_CHECKING:
    from app.core.container import Container

# Sources whose candles of one symbol do not depend on which other symbols are read.
SPLITTABLE_SOURCES = ("store", "files")


@dataclass(frozen=True)
class Piece:
    """One stored group of symbols: where its rows are, their hash, and the per-symbol counts."""

    symbols: tuple[str, ...]
    path: str
    sha256: str
    rows: int
    per_symbol: dict[str, Any]
    source: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbols": list(self.symbols),
            "path": self.path,
            "sha256": self.sha256,
            "rows": self.rows,
            "per_symbol": self.per_symbol,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Piece:
        return cls(
            tuple(values["symbols"]), values["path"], values["sha256"], int(values["rows"]), values["per_symbol"],
            values["source"],
        )  # fmt: skip


def symbol_groups(spec: DatasetSpec, symbols_per_piece: int) -> list[tuple[str, ...]]:
    """The spec's symbols in groups of `symbols_per_piece` (one group: not worth splitting, or not splittable)."""
    symbols = spec.symbols
    if spec.source not in SPLITTABLE_SOURCES or len(symbols) <= symbols_per_piece:
        return [symbols]
    return [symbols[i : i + symbols_per_piece] for i in range(0, len(symbols), symbols_per_piece)]


def build_piece(container: Container, spec: DatasetSpec, symbols: tuple[str, ...]) -> Piece:
    """Build and store the rows of `symbols` (a group of the spec's), addressed by their content hash."""
    unknown = [s for s in symbols if s not in spec.symbols]
    if unknown:
        raise ValueError(f"dataset {spec.dataset_id()}: {unknown} are not among its symbols")
    frame, per_symbol, source = symbol_frame(container, spec, symbols)
    data = parquet_bytes(frame)
    rows = len(frame)
    del frame
    # Content-addressed: a redelivered piece task rewrites the same bytes under the same name.
    stored = container.artifacts.put_bytes(f"datasets/{spec.dataset_id()}/pieces/{sha256_bytes(data)}.parquet", data)
    return Piece(tuple(symbols), stored.path, stored.sha256, rows, per_symbol, source)


def join_pieces(container: Container, spec: DatasetSpec, pieces: list[Piece]) -> DatasetInfo:
    """The dataset of `spec` from its pieces (each checked against its sha256); reused when already built."""
    existing = existing_dataset(container, spec.dataset_id())
    if existing is not None:
        return existing
    covered = [s for piece in pieces for s in piece.symbols]
    if sorted(covered) != sorted(spec.symbols) or len(covered) != len(set(covered)):
        raise ValueError(f"dataset {spec.dataset_id()}: the pieces cover {covered}, not {list(spec.symbols)}")
    order = {symbol: i for i, symbol in enumerate(spec.symbols)}
    ordered = sorted(pieces, key=lambda piece: order[piece.symbols[0]])
    parts = [
        pd.read_parquet(io.BytesIO(container.artifacts.get_bytes(piece.path, expected_sha256=piece.sha256)))
        for piece in ordered
    ]
    per_symbol = {symbol: counts for piece in ordered for symbol, counts in piece.per_symbol.items()}
    per_symbol = {symbol: per_symbol[symbol] for symbol in spec.symbols}
    frame = time_major(parts)
    return store_dataset(container, spec, frame, per_symbol, _source(spec, ordered))


def _source(spec: DatasetSpec, pieces: list[Piece]) -> dict[str, Any]:
    """The manifest's `source` as the one-piece build writes it."""
    if spec.source == "files":
        return {"source": "files", "files": dict(spec.files)}
    return pieces[0].source
