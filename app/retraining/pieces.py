"""A large job's dataset prepared in pieces, one task per group of symbols, before the dataset step joins them.

The job row holds the piece count (`metadata.dataset_pieces`, fixed when the job starts,
from `settings.dataset_piece_symbols`) and each finished piece (`metadata.pieces[<k>]`:
its path and sha256, or its error). A redelivered piece task finds its piece and does
nothing; the dataset step joins the pieces by content hash (`dataset_pieces.join_pieces`),
builds any piece whose task was lost itself, and reports a piece's error as the dataset's.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from app.core.clock import utcnow
from app.data_pipeline.dataset import DatasetSpec
from app.data_pipeline.dataset_pieces import Piece, build_piece, join_pieces, symbol_groups
from app.retraining import jobs
from app.retraining.datasets import dataset_spec
from app.retraining.heartbeat import Heartbeat
from app.retraining.spec import DataSelection

if TYPE_CHECKING:
    from app.core.container import Container

log = logging.getLogger(__name__)


def piece_count(container: Container, selection: DataSelection) -> int:
    """How many pieces the job's dataset is prepared in (0: one piece, by the dataset step alone)."""
    if selection.dataset_id:
        return 0
    try:
        spec = dataset_spec(container.policy_store.get(), selection)
    except ValueError:
        return 0  # the dataset step reports the invalid spec
    groups = symbol_groups(spec, container.settings.dataset_piece_symbols)
    return len(groups) if len(groups) > 1 else 0


def prepare_piece(container: Container, job_id: str, piece: int) -> dict[str, Any]:
    """Build piece `piece` (1-based) of the job's dataset; records its hash or its error in the job."""
    with container.session() as session:
        row = jobs.lock_job(session, job_id)
        meta = dict(row.metadata_ or {})
        if row.status != jobs.RUNNING:
            return {"job_id": job_id, "piece": piece, "skipped": row.status}
        done = (meta.get("pieces") or {}).get(str(piece))
        if done:
            return {"job_id": job_id, "piece": piece} | {k: done.get(k) for k in ("sha256", "error")}
        if row.stage == "queued":
            row.stage, row.heartbeat_at = "preparing_dataset", utcnow()
    result: dict[str, Any]
    started = time.monotonic()
    try:
        spec = dataset_spec(container.policy_store.get(), DataSelection.model_validate(meta.get("spec") or {}))
        groups = symbol_groups(spec, container.settings.dataset_piece_symbols)
        if not 1 <= piece <= len(groups):
            raise ValueError(f"piece {piece} is not one of the dataset's {len(groups)} pieces")
        with Heartbeat(container, job_id):
            result = build_piece(container, spec, groups[piece - 1]).to_dict()
        result["seconds"] = round(time.monotonic() - started, 3)
    except Exception as exc:  # recorded; the dataset step reports it as the dataset's error
        log.exception("job %s: dataset piece %d failed", job_id, piece)
        result = {"error": f"{type(exc).__name__}: {exc}"[:1000]}
    with container.session() as session:
        row = jobs.lock_job(session, job_id)
        pieces = dict((row.metadata_ or {}).get("pieces") or {})
        pieces.setdefault(str(piece), result)  # a duplicate delivery that finished first stands
        jobs.set_metadata(row, pieces=pieces)
        row.progress_pct, row.heartbeat_at = jobs.training_progress(row), utcnow()
        result = pieces[str(piece)]
    return {"job_id": job_id, "piece": piece} | {k: result.get(k) for k in ("sha256", "error")}


def join_job_pieces(container: Container, spec: DatasetSpec, recorded: dict[str, Any], count: int) -> str:
    """The dataset joined from the job's pieces (a lost piece is built here); returns its id."""
    groups = symbol_groups(spec, container.settings.dataset_piece_symbols)
    if len(groups) != count:
        raise ValueError(f"the dataset was to be prepared in {count} pieces, its spec now gives {len(groups)}")
    pieces = []
    for k, symbols in enumerate(groups, start=1):
        entry = recorded.get(str(k))
        if entry and entry.get("error"):
            raise ValueError(f"piece {k} ({', '.join(symbols)}): {entry['error']}")
        pieces.append(Piece.from_dict(entry) if entry else build_piece(container, spec, symbols))
    return str(join_pieces(container, spec, pieces).dataset_id)
