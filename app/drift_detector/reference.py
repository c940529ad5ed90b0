"""Reference statistics of a model's training window, computed once and kept beside the model.

`build_reference(features_df, feature_names)` sorts every feature column (NaN dropped) and
precomputes what a drift check needs from the reference side: the bucket grid of the exact
KS algorithm (`ecdf.build_grid`) and the PSI decile edges with the reference's own counts.

Stored as one `.npz` (numpy's own format, loaded with `allow_pickle=False`) in the artifact
store next to the model: `<model dir>/drift_reference.npz`. `save_reference` returns the
`StoredArtifact` (path, sha256); whoever records the model keeps that sha256 (the model's
manifest under `drift_reference`), and `load_reference` refuses a file whose hash differs.
"""

from __future__ import annotations

import io
import json
import posixpath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from app.core.artifacts import StoredArtifact
from app.drift_detector.ecdf import ReferenceGrid, build_grid
from app.drift_detector.stats import PSI_BINS, lag1_autocorrelation, psi_edges_from_sorted

if TYPE_CHECKING:
    from app.core.container import Container

REFERENCE_FILE = "drift_reference.npz"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ReferenceStats:
    feature_names: list[str]
    sorted_values: NDArray[np.float64]  # (F, N): each row ascending, NaN padding after counts[f]
    counts: NDArray[np.int64]  # (F,) non-NaN values per feature
    grid: ReferenceGrid
    psi_edges: NDArray[np.float64]  # (F, PSI_BINS - 1)
    psi_edge_counts: NDArray[np.int64]  # (F, PSI_BINS - 1) reference values <= each edge
    autocorrelation: NDArray[np.float64]  # (F,) lag-1, in the training rows' order
    metadata: dict[str, Any] = field(default_factory=dict)  # model id, training window, ...

    @property
    def rows(self) -> int:
        return int(self.sorted_values.shape[1])


def build_reference(
    features_df: pd.DataFrame, feature_names: list[str], metadata: dict[str, Any] | None = None
) -> ReferenceStats:
    """Reference statistics of `feature_names` in `features_df` (the model's training rows).

    Rows should be in time order (per symbol) so that the lag-1 autocorrelation used for
    effective sample sizes means something.
    """
    missing = [name for name in feature_names if name not in features_df.columns]
    if missing:
        raise ValueError(f"build_reference: columns {missing} are not in the feature frame")
    if not feature_names:
        raise ValueError("build_reference: no feature names given")
    try:
        matrix = features_df[feature_names].to_numpy(dtype=np.float64).T
    except (TypeError, ValueError) as exc:
        raise ValueError(f"build_reference: feature columns must be numeric ({exc})") from None
    return reference_from_matrix(np.ascontiguousarray(matrix), list(feature_names), metadata)


def reference_from_matrix(
    columns: NDArray[np.float64], feature_names: list[str], metadata: dict[str, Any] | None = None
) -> ReferenceStats:
    """As `build_reference`, from an (F, N) array (one row per feature)."""
    if columns.ndim != 2 or columns.shape[0] != len(feature_names):
        raise ValueError(f"reference matrix has shape {columns.shape}, expected ({len(feature_names)}, rows)")
    autocorrelation = np.array([lag1_autocorrelation(column) for column in columns])
    sorted_values = np.sort(columns, axis=1)  # NaN sort last
    counts = (~np.isnan(sorted_values)).sum(axis=1).astype(np.int64)
    empty = [feature_names[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise ValueError(f"build_reference: features {empty} have no finite values in the training window")
    edges = np.stack([psi_edges_from_sorted(sorted_values[f, : counts[f]], PSI_BINS) for f in range(len(counts))])
    edge_counts = np.stack(
        [np.searchsorted(sorted_values[f, : counts[f]], edges[f], side="right") for f in range(len(counts))]
    ).astype(np.int64)
    return ReferenceStats(
        feature_names=list(feature_names),
        sorted_values=sorted_values,
        counts=counts,
        grid=build_grid(sorted_values, counts),
        psi_edges=edges,
        psi_edge_counts=edge_counts,
        autocorrelation=autocorrelation,
        metadata=dict(metadata or {}),
    )


def reference_to_bytes(reference: ReferenceStats) -> bytes:
    buffer = io.BytesIO()
    np.savez(
        buffer,
        format_version=np.array(FORMAT_VERSION),
        feature_names=np.array(reference.feature_names, dtype=np.str_),
        sorted_values=reference.sorted_values,
        counts=reference.counts,
        grid_origin=reference.grid.origin,
        grid_scale=reference.grid.scale,
        grid_shift=reference.grid.shift,
        grid_cumulative=reference.grid.cumulative,
        psi_edges=reference.psi_edges,
        psi_edge_counts=reference.psi_edge_counts,
        autocorrelation=reference.autocorrelation,
        metadata=np.array(json.dumps(reference.metadata, default=str)),
    )
    return buffer.getvalue()


def reference_from_bytes(data: bytes, source: str = "<bytes>") -> ReferenceStats:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            version = int(archive["format_version"])
            if version != FORMAT_VERSION:
                raise ValueError(f"format version {version}, this code reads {FORMAT_VERSION}")
            return ReferenceStats(
                feature_names=[str(name) for name in archive["feature_names"]],
                sorted_values=archive["sorted_values"],
                counts=archive["counts"],
                grid=ReferenceGrid(
                    archive["grid_origin"], archive["grid_scale"], archive["grid_shift"], archive["grid_cumulative"]
                ),
                psi_edges=archive["psi_edges"],
                psi_edge_counts=archive["psi_edge_counts"],
                autocorrelation=archive["autocorrelation"],
                metadata=json.loads(str(archive["metadata"])),
            )
    except (KeyError, ValueError, OSError) as exc:
        raise ValueError(f"drift reference {source} is not readable: {exc}") from None


def reference_path(model_file_path: str) -> str:
    """Where the reference of the model stored at `model_file_path` lives (same directory)."""
    directory = model_file_path.rstrip("/")
    if posixpath.splitext(directory)[1]:  # a file: use its directory
        directory = posixpath.dirname(directory)
    return posixpath.join(directory, REFERENCE_FILE)


def save_reference(container: Container, reference: ReferenceStats, model_file_path: str) -> StoredArtifact:
    """Write the reference beside the model; keep the returned sha256 with the model record."""
    return container.artifacts.put_bytes(reference_path(model_file_path), reference_to_bytes(reference))


def load_reference(container: Container, path: str, expected_sha256: str) -> ReferenceStats:
    """Read a stored reference, refusing it (ArtifactIntegrityError) if its hash differs."""
    return reference_from_bytes(container.artifacts.get_bytes(path, expected_sha256), path)
