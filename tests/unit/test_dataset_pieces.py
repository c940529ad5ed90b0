"""A large job's dataset prepared in pieces (groups of symbols) and joined by content hash equals
the dataset built in one piece: the same rows, the same Parquet bytes, the same sha256."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from app.bootstrap import Container, bootstrap
from app.core.dispatch import InlineDispatcher
from app.core.settings import Mode, Settings
from app.data_pipeline.dataset import DatasetSpec, build_dataset
from app.data_pipeline.dataset_pieces import build_piece, join_pieces, symbol_groups
from app.retraining import RetrainingOrchestrator

DATA = Path(__file__).resolve().parent.parent / "data" / "ohlcv"
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "ADA/USDT")
FILES = {s: str(DATA / f"binance_{s.replace('/', '')}_1h.csv") for s in SYMBOLS}
SELECTION = {
    "source": "files",
    "symbols": list(SYMBOLS),
    "timeframe": "1h",
    "files": FILES,
    "start": "2021-01-01T00:00:00",
    "end": "2021-02-05T00:00:00",
}


@pytest.fixture
def second_store(tmp_path: Path) -> Iterator[Container]:
    """Another embedded container (its own database and artifacts): builds the same spec from scratch."""
    settings = Settings(
        CLM_MODE=Mode.EMBEDDED,
        DATABASE_URL=f"sqlite:///{tmp_path / 'other.sqlite'}",
        ARTIFACT_ROOT=str(tmp_path / "other-artifacts"),
    )
    container = bootstrap(settings, InlineDispatcher(), migrate=True)
    yield container
    container.dispose()


def _spec() -> DatasetSpec:
    return DatasetSpec.model_validate(SELECTION)


@pytest.mark.parametrize("per_piece", [1, 3])
def test_pieces_joined_by_hash_equal_the_dataset_built_in_one_piece(sqlite_container, second_store, per_piece) -> None:
    spec = _spec()
    groups = symbol_groups(spec, per_piece)
    assert [s for g in groups for s in g] == list(SYMBOLS) and len(groups) == -(-4 // per_piece)
    # Built in reverse order, as workers may finish them: the join orders them by the spec.
    pieces = [build_piece(sqlite_container, spec, group) for group in reversed(groups)]
    joined = join_pieces(sqlite_container, spec, pieces)
    whole = build_dataset(second_store, spec)

    assert joined.dataset_id == whole.dataset_id and not whole.reused
    assert joined.sha256 == whole.sha256 and joined.rows == whole.rows
    assert joined.manifest["per_symbol"] == whole.manifest["per_symbol"]
    assert joined.manifest["source"] == whole.manifest["source"]
    frames = [
        pd.read_parquet(io.BytesIO(c.artifacts.get_bytes(info.file_path, info.sha256)))
        for c, info in ((sqlite_container, joined), (second_store, whole))
    ]
    pd.testing.assert_frame_equal(*frames)


def test_a_tampered_piece_is_refused_and_a_piece_set_must_cover_the_symbols(sqlite_container) -> None:
    from app.core.artifacts import ArtifactIntegrityError

    spec = _spec()
    first, second = (build_piece(sqlite_container, spec, g) for g in symbol_groups(spec, 2))
    with pytest.raises(ValueError, match="the pieces cover"):
        join_pieces(sqlite_container, spec, [first])
    sqlite_container.artifacts.put_bytes(second.path, b"not the piece")
    with pytest.raises(ArtifactIntegrityError):
        join_pieces(sqlite_container, spec, [first, second])


def test_a_large_job_prepares_its_dataset_in_piece_tasks_and_trains_on_the_joined_one(
    sqlite_container, second_store
) -> None:
    from workers.celery_app import celery_app, configure
    from workers.celery_dispatcher import CeleryDispatcher

    configure(sqlite_container.settings)
    sqlite_container.dispatcher = CeleryDispatcher(celery_app)
    sqlite_container.settings = sqlite_container.settings.model_copy(update={"dataset_piece_symbols": 3})
    sqlite_container.policy_store.update(
        {"training": {"cv_folds": 2}, "clm_config": {"baseline_gate": {"enabled": False}}}, author="test"
    )
    try:
        orchestrator = RetrainingOrchestrator(sqlite_container)
        job = orchestrator.get_job(orchestrator.start_partial(["naive"], reason="test", spec=SELECTION))
    finally:
        celery_app.conf.task_always_eager = False

    assert job.status == "completed", job.error_message
    assert job.metadata["dataset_pieces"] == 2 and sorted(job.metadata["pieces"]) == ["1", "2"]
    assert job.metadata["pieces"]["1"]["symbols"] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    assert job.metadata["canvas_tasks"] == 2 + 2 + 1 + 2 and job.progress_pct == 100.0
    from app.retraining.datasets import dataset_spec
    from app.retraining.spec import DataSelection

    job_spec = dataset_spec(sqlite_container.policy_store.get(), DataSelection.model_validate(job.metadata["spec"]))
    whole = build_dataset(second_store, job_spec)  # the same spec in one piece, elsewhere
    assert job.metadata["dataset_id"] == whole.dataset_id
    with sqlite_container.session() as session:
        from app.core.db.models import Dataset

        assert session.get(Dataset, whole.dataset_id).sha256 == whole.sha256
