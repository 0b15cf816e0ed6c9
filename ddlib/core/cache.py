"""Content-addressed cache for expensive artifacts.

Every artifact (a data set, a surrogate, a synthetic set, an expert trajectory) is stored under
``<cache root>/<kind>/<key>/`` where ``key`` is a hash of the configuration that produced it.
Files are written atomically (temporary file + ``os.replace``) and a ``meta.json`` beside them
records each file's sha256, so a truncated or corrupted file is detected on load and rebuilt
instead of silently poisoning later results.

Concurrency: :meth:`ArtifactDir.lock` holds an exclusive ``fcntl.flock`` on ``<key>.lock`` beside
the artifact folder. Builders take it around "load when complete, else build and commit"
(:func:`get_or_build`), so two processes asking for the same artifact at once build it once and
both read the same bytes; the lock is re-entrant within one process.

Sources are identified by content: :func:`file_content_digest` hashes the bytes of files, and
:func:`folder_content_digest` the bytes of every file under a folder, with an index of per-file
digests stored in the cache and reused only while a file's size and mtime are unchanged.

Build times: ``meta.json`` also records when the artifact's builder held its lock and when it
committed (``build``: wall-clock start, finish, seconds, process id), so one run's cache is also
its profile (``python -m ddlib.tools.profile_run`` sums it by kind). Nothing reads it back into a
result: it is outside the key and outside the provenance.

Checkpoints (resumable state written many times during a run) carry their checksum inside the
file (:func:`write_checked` / :func:`read_checked`), so a flipped bit is detected before restore.

The cache root is ``$DDLIB_CACHE`` when set, else ``$XDG_CACHE_HOME/ddlib`` (``~/.cache/ddlib``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import io
import json
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddlib.core import env
from ddlib.core.code_identity import code_fingerprint

CACHE_ENV = env.CACHE_ENV
META_FILE = "meta.json"


class CacheCorruptionWarning(UserWarning):
    """A cached file failed its checksum and is being rebuilt."""


class StaleReuseWarning(UserWarning):
    """An artifact built by other code was reused because ``$DDLIB_REUSE_STALE`` asked for it."""


class CacheError(RuntimeError):
    """The cache folder cannot be used (not a folder, not writable); the message says how to fix it."""


class ChecksumError(ValueError):
    """A self-checked file (a checkpoint) is truncated, corrupted or not in the expected format."""


def _reuse_stale() -> bool:
    try:
        return env.reuse_stale()
    except env.EnvError as exc:
        raise CacheError(str(exc)) from None


def cache_root() -> Path:
    """The folder holding every cached artifact (created on demand)."""
    try:
        named = env.cache()
    except env.EnvError as exc:
        raise CacheError(str(exc)) from None
    if named is not None:
        root = named
        origin = f"${CACHE_ENV}={env.raw(CACHE_ENV)}"
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(base) / "ddlib"
        origin = f"the default cache folder {root}"
    if root.exists() and not root.is_dir():
        raise CacheError(f"{origin} is a file, not a folder; set ${CACHE_ENV} to a folder (it is created if missing)")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(f"cannot create the cache folder from {origin}: {exc.strerror or exc}; "
                         f"set ${CACHE_ENV} to a writable folder") from exc
    return root


def check_writable(root: Path | None = None) -> Path:
    """Raise :class:`CacheError` unless the cache folder accepts new files (checked before long work,
    so a read-only cache fails at once instead of after the computation). Returns the folder."""
    root = root or cache_root()
    try:
        fd, probe = tempfile.mkstemp(dir=root, prefix=".write-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CacheError(f"the cache folder {root} is not writable ({exc.strerror or exc}); set ${CACHE_ENV} to a "
                         "writable folder, or fix its permissions") from exc
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
    """sha256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_content_digest(*paths: Path) -> str:
    """Identity of source files by their bytes (order matters): a changed file under the same path
    gives a different digest, so nothing built from the old bytes is served again."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(sha256_file(Path(path)).encode())
    return digest.hexdigest()


def folder_content_digest(folder: Path, pattern: str = "**/*") -> str:
    """Identity of every file under ``folder`` matching ``pattern``, by relative path and bytes
    (see :func:`listed_content_digest`)."""
    folder = Path(folder)
    return listed_content_digest(sorted(p for p in folder.glob(pattern) if p.is_file()), folder)


def listed_content_digest(files: list[Path], base: Path) -> str:
    """Identity of ``files`` (all under ``base``) by relative path and bytes.

    Hashing a large image folder is slow, so the per-file digests are kept in an index in the cache
    (``fingerprints/<hash of the base path>.json``) and reused for a file only while its size and
    mtime are unchanged; any changed file is hashed again."""
    base = Path(base).resolve()
    index_path = cache_root() / "fingerprints" / f"{hashlib.sha256(str(base).encode()).hexdigest()[:24]}.json"
    try:
        index = json.loads(index_path.read_text()) if index_path.exists() else {}
    except (OSError, ValueError):  # unreadable or not UTF-8: hash again
        index = {}
    updated = dict(index)
    digest = hashlib.sha256()
    for file in files:
        file = Path(file).resolve()
        rel = str(file.relative_to(base))
        stat = file.stat()
        known = index.get(rel)
        if isinstance(known, list) and len(known) == 3 and known[0] == stat.st_size and known[1] == stat.st_mtime_ns:
            file_digest = known[2]
        else:
            file_digest = sha256_file(file)
        updated[rel] = [stat.st_size, stat.st_mtime_ns, file_digest]
        digest.update(f"{rel}\0{file_digest}\n".encode())
    if updated != index:
        try:
            atomic_write_json(index_path, updated)
        except OSError:
            pass  # the index only saves time; a read-only cache still gets the right digest
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
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise CacheError(f"no space left to write {path} ({exc.strerror}); free space on that disk or set "
                             f"${CACHE_ENV} to a folder on a larger one (nothing partial was kept)") from exc
        raise


def atomic_write_json(path: Path, payload: Any) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(_jsonable(payload), indent=2, sort_keys=True)))


_CHECKED_MAGIC = b"ddlib-checked-v1 sha256="


def write_checked(path: Path, obj: Any) -> None:
    """``torch.save`` ``obj`` atomically with its sha256 in a one-line header (see :func:`read_checked`)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    body = buffer.getvalue()
    header = _CHECKED_MAGIC + hashlib.sha256(body).hexdigest().encode() + b"\n"

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(header)
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
    atomic_write(path, write)


def read_checked(path: Path) -> Any:
    """Load a file written by :func:`write_checked`; :class:`ChecksumError` unless its bytes match."""
    data = Path(path).read_bytes()
    newline = data.find(b"\n")
    if not data.startswith(_CHECKED_MAGIC) or newline != len(_CHECKED_MAGIC) + 64:
        raise ChecksumError(f"{path} has no ddlib checksum header (written by another version, or damaged)")
    expected, body = data[len(_CHECKED_MAGIC):newline].decode(), data[newline + 1:]
    if hashlib.sha256(body).hexdigest() != expected:
        raise ChecksumError(f"{path} fails its checksum (truncated or corrupted)")
    return torch.load(io.BytesIO(body))


# Re-entrant per-process locks: flock locks belong to an open file, so a nested lock of the same
# key in the same process must reuse the open file instead of blocking on itself.
_HELD_LOCKS: dict[str, tuple[Any, int]] = {}
_HELD_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive inter-process lock on ``path`` (created if missing), re-entrant within a process."""
    path = Path(path)
    key = str(path.resolve()) if path.exists() else str(path.absolute())
    with _HELD_LOCKS_GUARD:
        held = _HELD_LOCKS.get(key)
        if held is not None:
            _HELD_LOCKS[key] = (held[0], held[1] + 1)
    if held is None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(path, "a+b")
        except OSError as exc:  # a read-only cache fails here first: say which folder and what to do
            raise CacheError(f"cannot take the cache lock {path} ({exc.strerror or exc}); set ${CACHE_ENV} to a "
                             "writable folder, or fix its permissions") from exc
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        except BaseException:
            fh.close()
            raise
        with _HELD_LOCKS_GUARD:
            _HELD_LOCKS[key] = (fh, 1)
    try:
        yield
    finally:
        with _HELD_LOCKS_GUARD:
            fh, count = _HELD_LOCKS[key]
            if count > 1:
                _HELD_LOCKS[key] = (fh, count - 1)
            else:
                del _HELD_LOCKS[key]
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
                fh.close()


class ArtifactDir:
    """One cached artifact: a folder of files plus ``meta.json`` with checksums and provenance.

    ``code`` declares what computes it (module names, modules, classes or instances of ddlib, see
    :func:`ddlib.core.code_identity.code_fingerprint`); the key is the hash of ``config`` together
    with that code's fingerprint, so an edit to the computation is never answered from the cache.
    ``code=()`` is for artifacts no ddlib computation shapes (tests, records of external files).

    With ``$DDLIB_REUSE_STALE=1``, a missing artifact is taken from a complete earlier build with the
    same ``config`` and other code (a warning names it; :attr:`reused_stale` holds its record)."""

    def __init__(self, kind: str, config: Any, *, code: Iterable[Any], root: Path | None = None):
        code = tuple(code)
        self.kind = kind
        self.config = config
        self.code = code_fingerprint(*code) if code else None
        self.config_key = config_key(config)
        self.key = config_key({"config": config, "code": self.code})
        base = root or cache_root()
        self.path = base / kind / self.key
        self._own = (self.key, self.path)
        self.reused_stale: dict[str, Any] | None = None
        self._lock_acquired: float | None = None  # wall-clock time this object's builder got the lock
        if not (self.path / META_FILE).exists() and _reuse_stale():
            self._adopt_stale(base)

    def _adopt_stale(self, base: Path) -> None:
        """Point this artifact at a complete build of the same configuration by other code (newest first)."""
        candidates = []
        for meta_path in (base / self.kind).glob(f"*/{META_FILE}"):
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue
            if isinstance(meta, dict) and meta.get("config_key") == self.config_key and meta.get("key") != self.key:
                candidates.append((meta_path.stat().st_mtime, meta_path.parent, meta))
        for _, folder, meta in sorted(candidates, key=lambda c: c[0], reverse=True):
            self.key, self.path = folder.name, folder
            if self.is_complete():
                self.reused_stale = {"kind": self.kind, "key": self.key, "built_with_code": meta.get("code"),
                                     "current_code": self.code, "instead_of": self._own[0]}
                warnings.warn(f"${env.REUSE_STALE_ENV} is set: reusing {self.kind}/{self.key}, built by code "
                              f"{meta.get('code')} (the current code is {self.code}); unset it to recompute",
                              StaleReuseWarning, stacklevel=3)
                return
            self.key, self.path = self._own

    # -- reading ---------------------------------------------------------------------------
    def meta(self) -> dict[str, Any] | None:
        meta_path = self.path / META_FILE
        if not meta_path.exists():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            # any unreadable metadata is a corrupt artifact: rebuilt, never a failure of every later run
            warnings.warn(f"cached metadata {meta_path} cannot be read ({type(exc).__name__}: {exc}); "
                          "the artifact is rebuilt", CacheCorruptionWarning, stacklevel=3)
            return None
        if not isinstance(meta, dict):
            warnings.warn(f"cached metadata {meta_path} is not a JSON object; the artifact is rebuilt",
                          CacheCorruptionWarning, stacklevel=3)
            return None
        return meta

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

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Exclusive lock on this artifact across processes (``<key>.lock`` beside its folder): hold it
        while deciding "load or build" and while building, so concurrent runs build it once."""
        return self._timed(file_lock(self.path.parent / f"{self.key}.lock"))

    @contextlib.contextmanager
    def _timed(self, lock: contextlib.AbstractContextManager[None]) -> Iterator[None]:
        with lock:
            outermost = self._lock_acquired is None
            if outermost:
                self._lock_acquired = time.time()
            try:
                yield
            finally:
                if outermost:
                    self._lock_acquired = None

    # -- writing ---------------------------------------------------------------------------
    def commit(self, files: Mapping[str, Callable[[Path], None]], provenance: Mapping[str, Any]) -> None:
        """Write every file atomically, then ``meta.json`` (written last: it marks completeness)."""
        started = self._lock_acquired  # None: committed without the lock (no build time known)
        if self.reused_stale is not None:  # a build by the current code goes under the current key
            self.key, self.path = self._own
            self.reused_stale = None
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / META_FILE).unlink(missing_ok=True)
        digests = {}
        for name, write in files.items():
            atomic_write(self.path / name, write)
            digests[name] = sha256_file(self.path / name)
        atomic_write_json(
            self.path / META_FILE,
            {"kind": self.kind, "key": self.key, "config": self.config, "code": self.code,
             "config_key": self.config_key, "files": digests,
             "provenance": dict(provenance), "build": build_record(started)},
        )


def build_record(started: float | None) -> dict[str, Any]:
    """When a build ran (``meta.json``'s ``build``): start (lock acquired), finish (now), seconds,
    process id. The seconds include the builders of the artifacts it needed and built inside it;
    :mod:`ddlib.tools.profile_run` subtracts them."""
    finished = time.time()
    return {"started": started, "finished": finished,
            "seconds": None if started is None else finished - started, "pid": os.getpid()}


def get_or_build(artifact: ArtifactDir, load: Callable[[], Any], build: Callable[[], Any],
                 use_cache: bool = True) -> Any:
    """``load()`` when ``artifact`` is complete, else ``build()`` (which commits it), under the artifact's
    lock: of several processes asking at once, one builds and the others then load its result."""
    if not use_cache:
        return build()
    with artifact.lock():
        if artifact.is_complete():
            return load()
        check_writable()
        return build()


def save_npz(arrays: Mapping[str, np.ndarray]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    return write


def save_torch(obj: Any) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        torch.save(obj, path)
    return write
