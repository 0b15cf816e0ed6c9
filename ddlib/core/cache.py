"""Content-addressed cache for expensive artifacts.

Every artifact (a data set, a surrogate, a synthetic set, an expert trajectory) is stored under
``<cache root>/<kind>/<key>/`` where ``key`` is a hash of the configuration that produced it.
Files are written atomically (temporary file + ``os.replace``) and a ``meta.json`` beside them
records each file's sha256, so a truncated or corrupted file is detected on load and rebuilt
instead of silently poisoning later results.

The cache root is ``$DDLIB_CACHE`` when set, else ``$XDG_CACHE_HOME/ddlib`` (``~/.cache/ddlib``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

CACHE_ENV = "DDLIB_CACHE"
META_FILE = "meta.json"


class CacheCorruptionWarning(UserWarning):
    """A cached file failed its checksum and is being rebuilt."""


def cache_root() -> Path:
    """The folder holding every cached artifact (created on demand)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        root = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(base) / "ddlib"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    raise TypeError(f"cannot hash configuration value of type {type(obj).__name__}: {obj!r}")


def config_key(config: Any, length: int = 16) -> str:
    """A stable hash of a (nested) configuration: dataclasses, dicts, tuples and scalars."""
    text = json.dumps(_jsonable(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def tensor_digest(*tensors: torch.Tensor | np.ndarray, length: int = 16) -> str:
    """Content hash of one or more tensors (their bytes, in order): the identity of data that has
    no configuration of its own (a synthetic set, a weight vector, embeddings)."""
    digest = hashlib.sha256()
    for t in tensors:
        array = t.detach().cpu().contiguous().numpy() if isinstance(t, torch.Tensor) else np.ascontiguousarray(t)
        digest.update(array.tobytes())
    return digest.hexdigest()[:length]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` then move the result onto ``path`` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(_jsonable(payload), indent=2, sort_keys=True)))


class ArtifactDir:
    """One cached artifact: a folder of files plus ``meta.json`` with checksums and provenance."""

    def __init__(self, kind: str, config: Any, root: Path | None = None):
        self.kind = kind
        self.config = config
        self.key = config_key(config)
        self.path = (root or cache_root()) / kind / self.key

    # -- reading ---------------------------------------------------------------------------
    def meta(self) -> dict[str, Any] | None:
        meta_path = self.path / META_FILE
        if not meta_path.exists():
            return None
        try:
            return json.loads(meta_path.read_text())
        except json.JSONDecodeError:
            return None

    def is_complete(self) -> bool:
        """True when ``meta.json`` exists and every file it lists matches its checksum."""
        meta = self.meta()
        if meta is None:
            return False
        for name, digest in meta.get("files", {}).items():
            file = self.path / name
            if not file.exists() or sha256_file(file) != digest:
                warnings.warn(
                    f"cached file {file} is missing or fails its checksum; rebuilding it",
                    CacheCorruptionWarning,
                    stacklevel=3,
                )
                return False
        return True

    def file(self, name: str) -> Path:
        return self.path / name

    # -- writing ---------------------------------------------------------------------------
    def commit(self, files: Mapping[str, Callable[[Path], None]], provenance: Mapping[str, Any]) -> None:
        """Write every file atomically, then ``meta.json`` (written last: it marks completeness)."""
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / META_FILE).unlink(missing_ok=True)
        digests = {}
        for name, write in files.items():
            atomic_write(self.path / name, write)
            digests[name] = sha256_file(self.path / name)
        atomic_write_json(
            self.path / META_FILE,
            {"kind": self.kind, "key": self.key, "config": self.config, "files": digests,
             "provenance": dict(provenance)},
        )


def save_npz(arrays: Mapping[str, np.ndarray]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    return write


def save_torch(obj: Any) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        torch.save(obj, path)
    return write
