"""Artifact store: model files, datasets and Q-tables under one root (local or fsspec URL).

Writes are atomic (temporary name, then rename). Every write returns the sha256 and size;
`get_bytes(..., expected_sha256)` refuses a file whose hash differs from the one the registry
holds, before any library parses it.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import fsspec


class ArtifactIntegrityError(RuntimeError):
    """A stored artifact does not match the hash recorded for it."""


class ArtifactNotFoundError(FileNotFoundError):
    pass


@dataclass(frozen=True)
class StoredArtifact:
    path: str  # relative to the store's root
    sha256: str
    size_bytes: int


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArtifactStore:
    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")
        self.fs, self._root_path = fsspec.core.url_to_fs(self.root)
        self.is_local = self.fs.protocol in ("file", ("file", "local"), "local") or "file" in (
            self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        )
        self.fs.makedirs(self._root_path, exist_ok=True)

    def _full(self, relative: str) -> str:
        relative = relative.lstrip("/")
        if ".." in Path(relative).parts:
            raise ValueError(f"artifact path may not leave the store: {relative!r}")
        return f"{self._root_path}/{relative}"

    def local_path(self, relative: str) -> Path:
        """The file on local disk (local stores only), for libraries that want a path."""
        if not self.is_local:
            raise RuntimeError("local_path is only available for a local artifact store")
        return Path(self._full(relative))

    def put_bytes(self, relative: str, data: bytes) -> StoredArtifact:
        full = self._full(relative)
        parent = full.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
        with self.fs.open(tmp, "wb") as handle:
            handle.write(data)
        self.fs.mv(tmp, full)
        return StoredArtifact(relative, sha256_bytes(data), len(data))

    def put_file(self, relative: str, source: str | os.PathLike[str]) -> StoredArtifact:
        return self.put_bytes(relative, Path(source).read_bytes())

    def get_bytes(self, relative: str, expected_sha256: str | None = None) -> bytes:
        full = self._full(relative)
        if not self.fs.exists(full):
            raise ArtifactNotFoundError(f"artifact not found: {relative}")
        with self.fs.open(full, "rb") as handle:
            data: bytes = handle.read()
        if expected_sha256 is not None and sha256_bytes(data) != expected_sha256:
            raise ArtifactIntegrityError(
                f"artifact {relative} has sha256 {sha256_bytes(data)[:12]}..., "
                f"the registry expects {expected_sha256[:12]}...: refusing to load it"
            )
        return data

    def exists(self, relative: str) -> bool:
        return bool(self.fs.exists(self._full(relative)))

    def delete(self, relative: str) -> None:
        full = self._full(relative)
        if self.fs.exists(full):
            self.fs.rm(full, recursive=True)

    def list(self, prefix: str = "") -> list[str]:
        base = self._full(prefix) if prefix else self._root_path
        if not self.fs.exists(base):
            return []
        found = self.fs.find(base)
        return sorted(str(p)[len(self._root_path) + 1 :] for p in found)
