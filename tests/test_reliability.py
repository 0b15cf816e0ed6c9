"""Issue 14: nothing wrong is ever served from the cache, and every bad input is a clear error.

One test (or a few) per misbehaviour the issue lists, most severe first."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from conftest import crash_dm_after
from ddlib.core import cache as cache_module
from ddlib.core.cache import CacheError, ChecksumError, folder_content_digest, read_checked, \
    write_checked
from ddlib.distill import DMConfig, FixedWeights, distill_dm
from ddlib.distill.registry import distill
from ddlib.kde_supcon.kde import KDEConfig, class_densities, density_to_weights, kde_density, kde_weights
from ddlib.kde_supcon.weights import KDEWeights
from ddlib.models import ConvNetConfig
from ddlib.sources import DataSourceError, RawImageSet
from ddlib.weighting.base import WeightError, validate_weights

TINY = ConvNetConfig(depth=2, width=8)
CFG = DMConfig(iterations=6, batch_real=8, model=TINY, checkpoint_every=3, dsa=False)


# -- 1. sources are identified by content ------------------------------------------------------------
def _fake_mnist(pixel: int = 0) -> RawImageSet:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (200, 28, 28), dtype=np.uint8)
    images[0, 0, 0] = pixel
    labels = np.tile(np.arange(10), 20).astype(np.int64)
    return RawImageSet("mnist", images, labels, images[:50].copy(), labels[:50].copy(),
                       provenance={"source": "idx files in /the/same/path"})


def test_colored_mnist_from_the_same_path_with_new_bytes_is_a_new_data_set(isolated_cache, monkeypatch):
    import ddlib.datasets.colored_mnist as cm
    from ddlib.datasets import load_dataset
    monkeypatch.setattr(cm, "load_mnist", lambda data_root=None: _fake_mnist(pixel=0))
    old = load_dataset("colored_mnist", 0.05)
    monkeypatch.setattr(cm, "load_mnist", lambda data_root=None: _fake_mnist(pixel=255))  # same path, new bytes
    new = load_dataset("colored_mnist", 0.05)
    assert old.fingerprint != new.fingerprint
    assert not np.array_equal(old.train.images, new.train.images)


def test_an_image_folder_digest_follows_the_bytes(isolated_cache, tmp_path):
    folder = tmp_path / "images" / "train" / "cat"
    folder.mkdir(parents=True)
    (folder / "a.png").write_bytes(b"one")
    first = folder_content_digest(tmp_path / "images")
    assert folder_content_digest(tmp_path / "images") == first  # stable (and served from the index)
    (folder / "a.png").write_bytes(b"two")  # same path, same size
    os.utime(folder / "a.png", ns=(1, 1))
    assert folder_content_digest(tmp_path / "images") != first


# -- 2./3. checkpoints: checksummed, restored all or nothing -----------------------------------------
def _interrupted_run(toy_dataset, monkeypatch):
    """Run DM until just after its first checkpoint, then crash (as Ctrl-C would)."""
    restore = crash_dm_after(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        distill_dm(toy_dataset, 1, CFG, progress=False)
    restore()
    checkpoints = list(cache_module.cache_root().glob("synthetic/dm/*/checkpoint.pt"))
    assert len(checkpoints) == 1
    return checkpoints[0]


def test_a_flipped_bit_in_a_checkpoint_discards_it_and_the_run_restarts(toy_dataset, isolated_cache, monkeypatch,
                                                                         capsys):
    straight = distill_dm(toy_dataset, 1, CFG, use_cache=False, progress=False)
    path = _interrupted_run(toy_dataset, monkeypatch)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40  # one bit, somewhere in the tensors
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError):
        read_checked(path)
    resumed = distill_dm(toy_dataset, 1, CFG, progress=False)
    assert "discarded" in capsys.readouterr().out
    assert torch.isfinite(resumed.images).all()
    assert torch.allclose(resumed.images, straight.images, atol=1e-6)


def test_a_half_valid_checkpoint_is_discarded_whole(toy_dataset, isolated_cache, monkeypatch, capsys):
    straight = distill_dm(toy_dataset, 1, CFG, use_cache=False, progress=False)
    path = _interrupted_run(toy_dataset, monkeypatch)
    state = read_checked(path)
    key = next(iter(state["tensors"]))
    state["tensors"][key] = state["tensors"][key] + 5.0  # copied first ...
    opt = next(iter(state["optimizers"]))
    state["optimizers"][opt] = {"state": {}, "param_groups": []}  # ... then this fails to load
    write_checked(path, state)  # a valid checksum: only the content is wrong
    resumed = distill_dm(toy_dataset, 1, CFG, progress=False)
    assert "discarded" in capsys.readouterr().out
    assert not path.exists()
    assert torch.allclose(resumed.images, straight.images, atol=1e-6)


# -- 4. weights are checked where distill receives them ---------------------------------------------
def test_all_zero_weights_are_a_clear_error_not_a_nan_set(toy_dataset, isolated_cache):
    zero = FixedWeights(torch.zeros(len(toy_dataset.train)), "zeros")
    with pytest.raises(WeightError, match="sum"):
        distill("dm", toy_dataset, 1, CFG, weighter=zero, progress=False)
    assert not list(isolated_cache.glob("synthetic/dm/*/synthetic.pt"))  # nothing cached


@pytest.mark.parametrize("weights, match", [
    (torch.full((2, 3), 0.5), "sum"), (torch.full((2, 4), 0.25), "shape"),
    (torch.tensor([[float("nan"), 0.5, 0.5]] * 2), "non-finite"), (torch.tensor([[-0.5, 1.0, 0.5]] * 2), "negative"),
    (np.full((2, 3), 1 / 3), "torch.Tensor"), (torch.ones(2, 3, dtype=torch.long), "dtype")])
def test_bad_weights_are_rejected_with_what_was_expected(weights, match):
    with pytest.raises(WeightError, match=match):
        validate_weights(weights, torch.zeros(2, 3, dtype=torch.long))
    validate_weights(torch.full((2, 3), 1 / 3), torch.zeros(2, 3, dtype=torch.long))  # the good case passes


def test_kde_functions_check_their_arguments():
    z = torch.randn(2, 5, 4)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="sigma2"):
            kde_density(z, bad)
        with pytest.raises(ValueError, match="tau"):
            density_to_weights(torch.rand(2, 5), bad)
    assert torch.allclose(density_to_weights(torch.rand(2, 5), float("inf")), torch.full((2, 5), 0.2))
    with pytest.raises(ValueError, match="NaN"):
        kde_weights(torch.full((5, 4), float("nan")), 0.1, 0.1)
    with pytest.raises(ValueError, match=r"\[B, d\]"):
        kde_weights(torch.randn(5), 0.1, 0.1)
    with pytest.raises(ValueError, match="num_classes"):
        class_densities(torch.randn(6, 4), np.array([0, 1, 2, 0, 1, 2]), 2, 0.1)
    weighter = KDEWeights(torch.randn(6, 4), np.array([0, 1, 2, 0, 1, 2]), 3, KDEConfig())
    with pytest.raises(IndexError, match="0..5"):
        weighter(torch.tensor([[-1, 3]]))
    with pytest.raises(ValueError, match=r"\[N, d\]"):
        KDEWeights(torch.randn(6), np.arange(6) % 3, 3, KDEConfig())
    with pytest.raises(ValueError, match="num_classes"):
        KDEWeights(torch.randn(6, 4), np.arange(6) % 3, 2, KDEConfig())


# -- 6. parallel builds do not orphan their workers -----------------------------------------------
WORKER_PARENT = textwrap.dedent("""
    import os, sys, time
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from ddlib.datasets.corruptions import _exit_with_parent

    def work(_):
        return os.getpid(), time.sleep(300)

    if __name__ == "__main__":
        pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork"),
                                   initializer=_exit_with_parent, initargs=(os.getpid(),))
        pool.submit(work, 0)
        time.sleep(1.0)
        print(" ".join(str(p) for p in pool._processes), flush=True)
        time.sleep(300)
""")


def test_sigkill_of_a_parallel_build_leaves_no_worker(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(WORKER_PARENT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    workers = [int(p) for p in parent.stdout.readline().split()]
    assert workers
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)

    def alive(pid):
        try:
            os.kill(pid, 0)
            return open(f"/proc/{pid}/stat").read().split()[2] != "Z"
        except (ProcessLookupError, FileNotFoundError):
            return False
    end = time.monotonic() + 10
    while any(alive(p) for p in workers) and time.monotonic() < end:
        time.sleep(0.1)
    left = [p for p in workers if alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left


# -- 7./8. bad inputs are clear errors, nothing is substituted -------------------------------------
def test_a_truncated_gzip_idx_file_names_the_file(tmp_path):
    from ddlib.sources.idx import read_idx
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 100]) + bytes(100))[:-12])
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz.*truncated or corrupted"):
        read_idx(path)


def test_mnist_npz_with_wrong_keys_names_the_file(tmp_path, isolated_cache, monkeypatch):
    from ddlib.sources import load_mnist
    monkeypatch.delenv("DDLIB_DATA_ROOT", raising=False)
    np.savez(tmp_path / "mnist.npz", images=np.zeros(3))
    with pytest.raises(DataSourceError, match="mnist.npz lacks the arrays"):
        load_mnist(tmp_path, allow_download=False)


def test_out_of_range_labels_are_a_clear_error():
    from ddlib.sources.mnist import check_raw_arrays
    arrays = {"train_images": np.zeros((4, 2, 2), np.uint8), "train_labels": np.array([0, 1, 2, 12]),
              "test_images": np.zeros((2, 2, 2), np.uint8), "test_labels": np.array([0, 1])}
    with pytest.raises(DataSourceError, match="labels must lie in 0..9"):
        check_raw_arrays(arrays, "MNIST", "somewhere", 4, 2, (2, 2))


@pytest.mark.parametrize("ratio", ["0.05", None, 0, 1.0, float("nan")])
def test_bad_ratios_are_errors(ratio):
    from ddlib.datasets import load_dataset
    with pytest.raises((TypeError, ValueError), match="ratio"):
        load_dataset("colored_mnist", ratio)


def test_a_fractional_severity_is_not_rounded():
    from ddlib.datasets import load_dataset
    with pytest.raises(TypeError, match="severity"):
        load_dataset("corrupted_cifar10", 0.05, severity=4.7)


def test_bad_ipc_and_method_are_errors(toy_dataset):
    with pytest.raises(TypeError, match="IPC"):
        distill("dm", toy_dataset, 2.5, CFG, progress=False)
    with pytest.raises(TypeError, match="method"):
        distill(None, toy_dataset, 1, CFG, progress=False)


def test_bad_environment_variables_are_named(tmp_path, monkeypatch):
    from ddlib.datasets.corruptions import default_workers
    from ddlib.sources import data_roots
    monkeypatch.setenv("DDLIB_WORKERS", "abc")
    with pytest.raises(ValueError, match="DDLIB_WORKERS"):
        default_workers()
    monkeypatch.setenv("DDLIB_DATA_ROOT", str(tmp_path / "missing"))
    with pytest.raises(DataSourceError, match="DDLIB_DATA_ROOT.*not an existing folder"):
        data_roots()
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path / "file"))
    with pytest.raises(CacheError, match="DDLIB_CACHE.*is a file"):
        cache_module.cache_root()


def test_a_zero_ratio_override_is_kept_and_then_rejected():
    # 0 is a value, not "keep the profile's" (only None is): it reaches the config, which refuses it
    from ddlib.core.validation import ConfigError
    from ddlib.profiles import get_profile
    with pytest.raises(ConfigError, match=r"'kde_method.conflict_ratio' = 0: KDEMethodConfig.conflict_ratio expects"):
        get_profile("smoke", overrides={"kde_method.conflict_ratio": 0})


# -- 9. an unwritable cache fails before the work -------------------------------------------------
def test_an_unwritable_cache_fails_before_distilling(toy_dataset, isolated_cache, monkeypatch):
    import ddlib.distill.dm as dm_module
    ran = {"n": 0}
    real_loss = dm_module.dm_loss

    def counting_loss(*args, **kwargs):
        ran["n"] += 1
        return real_loss(*args, **kwargs)
    monkeypatch.setattr(dm_module, "dm_loss", counting_loss)
    cache_module.cache_root()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(cache_module.tempfile, "mkstemp", refuse)
    with pytest.raises(CacheError, match="not writable.*DDLIB_CACHE"):
        distill_dm(toy_dataset, 1, CFG, progress=False)
    assert ran["n"] == 0


# -- raw errors made clear (issue: the last raw errors) ------------------------------------------
def test_a_read_only_cache_fails_at_the_lock_with_a_clear_error(tmp_path, monkeypatch):
    import os
    import pytest
    from ddlib.core.cache import ArtifactDir, CacheError
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o500)
    try:
        with pytest.raises(CacheError, match="cannot take the cache lock .*writable folder"):
            with ArtifactDir("things", {"a": 1}, code=(), root=root).lock():
                pass
    finally:
        root.chmod(0o700)


def test_the_lock_error_names_the_folder_when_its_parent_is_a_file(tmp_path):
    import pytest
    from ddlib.core.cache import ArtifactDir, CacheError
    (tmp_path / "things").write_text("not a folder")
    with pytest.raises(CacheError, match="cannot take the cache lock"):
        with ArtifactDir("things/sub", {"a": 1}, code=(), root=tmp_path).lock():
            pass


def test_fixed_weights_with_too_few_scores_say_so():
    import pytest
    import torch
    from ddlib.weighting.base import FixedWeights
    weighter = FixedWeights(torch.ones(5), "five")
    assert torch.allclose(weighter(torch.tensor([[0, 4]])), torch.tensor([[0.5, 0.5]]))
    with pytest.raises(ValueError, match="holds 5 scores, but the batch asks for training sample 7"):
        weighter(torch.tensor([[0, 7]]))


def test_kde_weights_refuse_an_all_false_mask_row_instead_of_returning_nan():
    import pytest
    import torch
    from ddlib.kde_supcon.kde import density_to_weights, kde_weights
    z = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))
    mask = torch.tensor([[True, True, False], [False, False, False]])
    with pytest.raises(ValueError, match="mask row is all False"):
        kde_weights(z, 1.0, 0.1, mask)
    with pytest.raises(ValueError, match="the mask has shape"):
        density_to_weights(torch.zeros(2, 3), 0.1, torch.ones(2, 2, dtype=torch.bool))
    ok = kde_weights(z, 1.0, 0.1, torch.tensor([[True, True, False], [True, False, False]]))
    assert torch.allclose(ok.sum(-1), torch.ones(2)) and ok[1, 0] == 1.0 and ok[0, 2] == 0.0
