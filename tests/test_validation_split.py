"""The validation split of the synthetic data sets: a stratified, deterministic part of the source test split;
and LfF's exact Colored MNIST colours."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_data

from ddlib.datasets import load_dataset
from ddlib.datasets.colored_mnist import COLOURS
from ddlib.datasets.registry import split_generators
from ddlib.datasets.validation import VALID_FRACTION, split_test_source, valid_test_index

MNIST_TEST_CLASS_SIZES = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
# the table this project used before the exact values: LfF's colors.th rounded to 4 decimals
COLOURS_4_DECIMALS = np.array([
    [0.9837, 0.3125, 0.1686], [0.9905, 0.9156, 0.3515], [0.6730, 0.4611, 0.5798],
    [0.7833, 0.8316, 0.6013], [0.0880, 0.7780, 0.9818], [0.3214, 0.9611, 0.4464],
    [0.0246, 0.2357, 0.7587], [0.5552, 0.1016, 0.7618], [0.2077, 0.3929, 0.0187],
    [0.8337, 0.2024, 0.2669],
])


def shuffled_labels(sizes: list[int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(len(sizes)), sizes))


def test_every_fifth_of_each_class_when_the_class_size_allows():
    labels = shuffled_labels([1000] * 10)
    valid, test = valid_test_index(labels)
    assert (len(valid), len(test)) == (2000, 8000)
    for c in range(10):
        members = np.flatnonzero(labels == c)
        assert np.array_equal(np.intersect1d(valid, members), members[4::5])  # ranks 4, 9, 14, … in data-set order


def test_mnist_test_sizes_give_2000_valid_and_8000_test_disjoint_and_stratified():
    labels = shuffled_labels(MNIST_TEST_CLASS_SIZES)
    valid, test = valid_test_index(labels)
    assert (len(valid), len(test)) == (2000, 8000) and VALID_FRACTION == 0.2
    assert len(np.intersect1d(valid, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([valid, test])), np.arange(len(labels)))
    assert np.bincount(labels[valid]).tolist() == [int(np.round(0.2 * n)) for n in MNIST_TEST_CLASS_SIZES]
    again = valid_test_index(labels)
    assert np.array_equal(again[0], valid) and np.array_equal(again[1], test)


@pytest.mark.parametrize("n, n_valid", [(1, 0), (2, 0), (3, 1), (5, 1), (10, 2), (50, 10), (7, 1)])
def test_small_classes_keep_a_test_sample(n, n_valid):
    valid, test = valid_test_index(np.zeros(n, dtype=np.int64))
    assert len(valid) == n_valid and len(test) == n - n_valid >= 1


def test_split_of_a_slice_returns_source_indices():
    labels = np.tile(np.arange(10), 30)  # 30 per class, interleaved
    index = np.flatnonzero(np.arange(len(labels)) < 100)  # the first 10 of every class
    valid, test = split_test_source(index, labels)
    assert len(valid) == 20 and len(test) == 80 and set(valid) | set(test) == set(index.tolist())
    assert not set(valid) & set(test)
    with pytest.raises(ValueError, match="strictly between"):
        valid_test_index(labels, fraction=1.0)


def test_validation_stream_is_new_and_train_test_streams_are_unchanged():
    train, test, valid = split_generators(3)
    old_train, old_test = (np.random.default_rng(s) for s in np.random.SeedSequence(3).spawn(2))
    a, b, v = train.random(4), test.random(4), valid.random(4)
    assert np.array_equal(a, old_train.random(4)) and np.array_equal(b, old_test.random(4))
    assert not np.allclose(v, a) and not np.allclose(v, b)
    assert np.array_equal(split_generators(3)[2].random(4), v)


def test_colours_are_lffs_float32_values():
    assert COLOURS.dtype == np.float32 and COLOURS.shape == (10, 3)
    assert np.array_equal(np.round(COLOURS.astype(np.float64), 4), COLOURS_4_DECIMALS)
    assert not np.array_equal(COLOURS.astype(np.float64), COLOURS_4_DECIMALS)  # more digits than the old table
    for x in COLOURS.ravel():  # every literal round-trips through float32
        assert np.float32(repr(float(x))) == x


# -- real data -----------------------------------------------------------------------------------
def check_valid_and_test(ds, valid_per_class: int, test_per_class: int) -> None:
    for split, per_class in ((ds.valid, valid_per_class), (ds.test, test_per_class)):
        assert np.bincount(split.targets, minlength=10).tolist() == [per_class] * 10
        assert np.array_equal(split.aligned, split.bias == split.targets)
        # the test protocol: attributes uniform over the ten in every class, 10 % aligned
        assert (split.count_table(10, 10) == per_class // 10).all()
        assert split.aligned.mean() == pytest.approx(0.1)
    assert ds.provenance["valid_count"] == len(ds.valid) and ds.provenance["test_count"] == len(ds.test)


@pytest.mark.data
def test_bg_fmnist_full_build_has_2000_valid_and_8000_test():
    ds = require_data(load_dataset, "bg_fmnist", 0.05)
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (60_000, 2_000, 8_000)
    assert ds.train.conflicting_count == 3000
    check_valid_and_test(ds, 200, 800)


@pytest.mark.data
def test_bg_fmnist_slices_then_splits_and_is_deterministic(tmp_path, monkeypatch):
    from ddlib.sources import load_fashion_mnist
    builds = []
    for k in range(2):
        monkeypatch.setenv("DDLIB_CACHE", str(tmp_path / f"cache{k}"))  # two fresh builds, no cache hit
        builds.append(require_data(load_dataset, "bg_fmnist", 0.05, seed=1, train_per_class=20, test_per_class=50))
    a, b = builds
    assert (len(a.train), len(a.valid), len(a.test)) == (200, 100, 400)
    check_valid_and_test(a, 10, 40)
    for split in ("train", "valid", "test"):
        x, y = getattr(a, split), getattr(b, split)
        assert x.images.tobytes() == y.images.tobytes() and np.array_equal(x.bias, y.bias)
    # the validation items are the 5th, 10th, … of the first 50 test items of every class, the test items the rest
    fashion = load_fashion_mnist()
    for c in range(10):
        first = np.flatnonzero(fashion.test_labels == c)[:50]
        grey_valid = fashion.test_images[first[4::5]]
        grey_test = fashion.test_images[np.setdiff1d(first, first[4::5])]
        # an item pixel at full intensity stays 255 whatever the background: compare the items' bright masks
        assert np.array_equal(a.valid.images[a.valid.targets == c][:, 0] == 255, grey_valid == 255)
        assert np.array_equal(a.test.images[a.test.targets == c][:, 0] == 255, grey_test == 255)
