"""Stored models: each library's own files plus a manifest holding every file's sha256.

The registry keeps the manifest's path and hash. Loading checks the manifest against that
hash, then every file against the manifest, and only then lets a library read them: nothing
is parsed (let alone unpickled) before its hash is checked.
"""

from __future__ import annotations

import json
import math
import tempfile
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from app.core.artifacts import StoredArtifact
from app.core.clock import utcnow
from app.forecasters import forecaster_class
from app.forecasters.base import Forecaster

if TYPE_CHECKING:
    from app.core.container import Container

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


def json_safe(value: Any) -> Any:
    """NaN and infinities become null (PostgreSQL's JSONB refuses them); numpy scalars become Python's."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def library_versions(model_class: type[Forecaster]) -> dict[str, str]:
    names = ("numpy", "pandas", "scikit-learn", *model_class.LIBRARIES)
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def store_forecaster(
    container: Container, model: Forecaster, directory: str, details: dict[str, Any]
) -> tuple[StoredArtifact, dict[str, Any]]:
    """Write the model's files and a manifest (with every file's sha256) under `directory`."""
    with tempfile.TemporaryDirectory(prefix=f"clm-{model.MODEL_TYPE}-") as workdir:
        files = {}
        for name in model.save(workdir):
            stored = container.artifacts.put_file(f"{directory}/{name}", Path(workdir) / name)
            files[name] = {"sha256": stored.sha256, "size_bytes": stored.size_bytes}
    manifest = json_safe(
        {
            "manifest_version": MANIFEST_VERSION,
            "model_type": model.MODEL_TYPE,
            **details,
            "library_versions": library_versions(type(model)),
            "created_at": utcnow().isoformat(),
            "files": files,
        }
    )
    stored_manifest = container.artifacts.put_bytes(f"{directory}/{MANIFEST}", json.dumps(manifest, indent=1).encode())
    return stored_manifest, manifest


def load_forecaster(container: Container, record: Any, sha256: str | None = None) -> Forecaster:
    """Load a stored model: `record` is a registry record (file_path, sha256) or a manifest path.

    The manifest's hash is checked against the registry's, then every file against the
    manifest, before any library parses a byte; a mismatch raises ArtifactIntegrityError.
    """
    file_path = record if isinstance(record, str) else record.file_path
    expected = sha256 if sha256 is not None else (None if isinstance(record, str) else record.sha256)
    if not expected:
        raise ValueError(f"refusing to load {file_path}: no sha256 to verify it against")
    manifest = json.loads(container.artifacts.get_bytes(file_path, expected))

    model_class = forecaster_class(manifest["model_type"])
    directory = str(PurePosixPath(file_path).parent)
    with tempfile.TemporaryDirectory(prefix="clm-load-") as workdir:
        for name, meta in manifest["files"].items():
            if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
                raise ValueError(f"manifest {file_path} names a file outside its folder: {name!r}")
            data = container.artifacts.get_bytes(f"{directory}/{name}", meta["sha256"])
            target = Path(workdir) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return model_class.load(workdir)
