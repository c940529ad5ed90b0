"""A model's drift reference: built once from its training window, kept beside it, checked against.

`build_model_reference(container, model_id)` reads the model's manifest (`dataset_id`,
`feature_columns`, `training_data_range.train`), loads those training rows, builds the
reference statistics of its features except the calendar ones (`CALENDAR_FEATURES`: a window
of other weekdays or hours differs in them by construction, and they were the "strongest drift"
a day after the synthetic market's shift), stores them next to the model file and records
`{path, sha256, rows, built_at}` under `drift_reference` in the registry row's manifest.
It is idempotent: a model that has a reference keeps it.

`check_model_feature_drift(container, model_type, current_df)` compares a current feature
frame with the ACTIVE model's reference (building it on first use).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy.orm.attributes import flag_modified

from app.core.clock import utcnow
from app.core.db.models import ModelRegistry
from app.data_pipeline.dataset import load_dataset  # the pipeline is only needed here
from app.data_pipeline.features import CALENDAR_FEATURES
from app.drift_detector.reference import ReferenceStats, build_reference, load_reference, save_reference
from app.drift_detector.service import DriftResult, check_feature_drift
from app.model_registry.records import ACTIVE

if TYPE_CHECKING:
    from app.core.container import Container

MANIFEST_KEY = "drift_reference"
_CACHE_KEY = "drift_references"  # container.extras: loaded references by (path, sha256)
_CACHED_REFERENCES = 4  # a few ACTIVE and SHADOW models' worth


class NoReferenceError(LookupError):
    """The model has no training window to build a reference from; the message says what is missing."""


def _training_rows(container: Container, manifest: dict[str, Any], model_id: str) -> tuple[pd.DataFrame, list[str]]:
    dataset_id = manifest.get("dataset_id")
    features = manifest.get("feature_columns")
    if not dataset_id or not features:
        raise NoReferenceError(f"model {model_id}: manifest lacks dataset_id or feature_columns")
    frame, _ = load_dataset(container, dataset_id)
    train = (manifest.get("training_data_range") or {}).get("train") or {}
    if "start_ms" in train and "end_ms" in train and "timestamp" in frame.columns:
        frame = frame[(frame["timestamp"] >= train["start_ms"]) & (frame["timestamp"] <= train["end_ms"])]
    return frame, [name for name in features if name not in CALENDAR_FEATURES]


def build_model_reference(container: Container, model_id: str) -> dict[str, Any]:
    """Build and record the model's reference unless it has one; returns the manifest entry."""
    with container.session_factory() as session:
        row = session.get(ModelRegistry, model_id)
        if row is None:
            raise NoReferenceError(f"no model {model_id!r} in the registry")
        manifest, file_path, model_type = dict(row.manifest or {}), row.file_path, row.model_type
    if MANIFEST_KEY in manifest and container.artifacts.exists(manifest[MANIFEST_KEY]["path"]):
        return dict(manifest[MANIFEST_KEY])
    frame, features = _training_rows(container, manifest, model_id)
    reference = build_reference(frame, features, {"model_id": model_id, "model_type": model_type})
    stored = save_reference(container, reference, file_path)
    entry = {"path": stored.path, "sha256": stored.sha256, "rows": len(frame), "built_at": utcnow().isoformat()}
    with container.session() as session:
        row = session.get(ModelRegistry, model_id, with_for_update=True)
        if row is None:
            raise NoReferenceError(f"model {model_id!r} disappeared while its reference was built")
        row.manifest = {**(row.manifest or {}), MANIFEST_KEY: entry}
        flag_modified(row, "manifest")
    return entry


def reference_for_model(container: Container, model_id: str, build: bool = True) -> ReferenceStats:
    """The model's reference, hash-checked; built first when missing and `build` is true."""
    with container.session_factory() as session:
        row = session.get(ModelRegistry, model_id)
        entry = (row.manifest or {}).get(MANIFEST_KEY) if row is not None else None
    if entry is None:
        if not build:
            raise NoReferenceError(f"model {model_id!r} has no drift reference")
        entry = build_model_reference(container, model_id)
    return _loaded(container, entry["path"], entry["sha256"])


def _loaded(container: Container, path: str, sha256: str) -> ReferenceStats:
    """`load_reference`, kept per process for the last few (path, sha256): a reference is about 19 MB
    (its bucket grid) and every drift check of every ACTIVE model read it again. A cached one is the
    content that matched that sha256 when it was read."""
    cache: OrderedDict[tuple[str, str], ReferenceStats] = container.extras.setdefault(_CACHE_KEY, OrderedDict())
    key = (path, sha256)
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    reference = load_reference(container, path, sha256)
    grid = reference.grid
    for array in (reference.sorted_values, reference.counts, reference.psi_edges, reference.psi_edge_counts,
                  reference.autocorrelation, grid.origin, grid.scale, grid.shift, grid.cumulative):  # fmt: skip
        array.setflags(write=False)  # shared from now on: a check that wrote into it would fail loudly
    cache[key] = reference
    while len(cache) > _CACHED_REFERENCES:
        cache.popitem(last=False)
    return reference


def check_model_feature_drift(container: Container, model_type: str, current_df: pd.DataFrame) -> DriftResult:
    """Feature drift of `current_df` against the ACTIVE `model_type` model's training window."""
    with container.session_factory() as session:
        active = session.query(ModelRegistry).filter_by(model_type=model_type, status=ACTIVE).one_or_none()
        model_id = active.model_id if active is not None else None
    if model_id is None:
        raise NoReferenceError(f"no ACTIVE {model_type} model to check drift against")
    reference = reference_for_model(container, model_id)
    return check_feature_drift(container, reference, current_df, model_type=model_type, model_id=model_id)
