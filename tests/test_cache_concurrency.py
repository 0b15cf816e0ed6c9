"""Two real processes racing on one cache key build it once and read identical bytes."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import numpy as np

from ddlib.core.cache import ArtifactDir, get_or_build, save_npz


def _race(root: str, log: str, queue) -> None:
    artifact = ArtifactDir("race", {"n": 1}, code=(), root=Path(root))

    def load():
        with np.load(artifact.file("data.npz")) as data:
            return data["x"].copy()

    def build():
        with open(log, "a") as fh:  # one line per build
            fh.write(f"{os.getpid()}\n")
        time.sleep(0.5)  # a slow build: the other process arrives while it runs
        x = np.random.default_rng(os.getpid()).standard_normal(1000)  # differs between processes
        artifact.commit({"data.npz": save_npz({"x": x})}, {"builder": os.getpid()})
        return x

    queue.put(get_or_build(artifact, load, build).tobytes())


def test_two_processes_on_one_key_build_once_and_agree(tmp_path, monkeypatch):
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path))
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    log = tmp_path / "builds.log"
    procs = [ctx.Process(target=_race, args=(str(tmp_path), str(log), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(log.read_text().split()) == 1  # built once
    assert results[0] == results[1]  # both got the same bytes
    artifact = ArtifactDir("race", {"n": 1}, code=(), root=tmp_path)
    assert artifact.is_complete()  # and the files on disk are intact
    assert not list(artifact.path.glob(".*.tmp"))


def _lock_is_free(path: Path) -> bool:
    """Whether another open file (as another process would have) can take the lock right now."""
    import fcntl
    with open(path, "a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return True


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    artifact = ArtifactDir("race", {"n": 2}, code=(), root=tmp_path)
    lock_file = artifact.path.parent / f"{artifact.key}.lock"
    with artifact.lock():
        assert not _lock_is_free(lock_file)
        with artifact.lock():  # a nested lookup of the same key must not deadlock
            assert not _lock_is_free(lock_file)
        assert not _lock_is_free(lock_file)  # leaving the inner one keeps the outer one's lock
    assert _lock_is_free(lock_file)  # leaving the outer one releases it
    with artifact.lock():
        assert not _lock_is_free(lock_file)
