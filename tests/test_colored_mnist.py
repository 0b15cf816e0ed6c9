"""Colored MNIST follows the LfF recipe exactly."""

import numpy as np
import pytest

from ddlib.datasets import conflicting_count, load_dataset
from ddlib.datasets.assignment import assign_attributes
from ddlib.datasets.colored_mnist import COLOURS, colourise, jittered_colours

MNIST_TRAIN_CLASS_SIZES = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.mark.parametrize("ratio, expected", [(0.005, 300), (0.01, 598), (0.02, 1199), (0.05, 3000)])
def test_conflicting_counts_match_the_recipe(ratio, expected):
    assert conflicting_count(MNIST_TRAIN_CLASS_SIZES, ratio, 10) == expected


def test_assignment_is_blockwise_and_spreads_conflicts_evenly():
    targets = np.full(1000, 3)
    attrs = assign_attributes(targets, 0.09, 10)
    # walking the class in order, attributes are non-decreasing (blocks), the aligned block is 910 long
    assert (np.diff(attrs) >= 0).all()
    counts = np.bincount(attrs, minlength=10)
    assert counts[3] == 910
    assert set(np.delete(counts, 3)) == {10}


def test_uniform_ratio_gives_uniform_attributes():
    attrs = assign_attributes(np.zeros(1000, dtype=int), 0.9, 10)
    assert (np.bincount(attrs, minlength=10) == 100).all()


def test_colourise_multiplies_one_colour_per_image():
    digits = np.full((2, 4, 4), 200, dtype=np.uint8)
    colours = np.array([[1.0, 0.5, 0.0], [0.1, 0.2, 0.3]])
    out = colourise(digits, colours)
    assert out.shape == (2, 3, 4, 4) and out.dtype == np.uint8
    assert (out[0, :, 0, 0] == [200, 100, 0]).all()
    assert (out[1, :, 1, 2] == [20, 40, 60]).all()  # truncation, not rounding: 0.3*200 = 60


def test_jitter_is_per_image_and_clamped():
    rng = np.random.default_rng(0)
    colours = jittered_colours(np.array([0, 0, 4]), 0.05, rng)
    assert colours.shape == (3, 3)
    assert not np.allclose(colours[0], colours[1])  # one draw per image
    assert (colours >= 0).all() and (colours <= 1).all()
    assert np.abs(colours[2] - COLOURS[4]).max() < 0.3


@pytest.mark.data
def test_full_colored_mnist_counts_and_flags(cmnist):
    # training: all 60,000 MNIST training images; validation + test: MNIST's 10,000 test images, 20 / 80 %
    assert (len(cmnist.train), len(cmnist.valid), len(cmnist.test)) == (60_000, 2_000, 8_000)
    assert cmnist.train.conflicting_count == 3000
    assert np.array_equal(cmnist.train.aligned, cmnist.train.bias == cmnist.train.targets)
    # validation and test colours uniform: 10 % aligned, each attribute equally represented per class
    for split in (cmnist.valid, cmnist.test):
        assert np.array_equal(split.aligned, split.bias == split.targets)
        assert abs(split.aligned.mean() - 0.1) < 0.002
    assert cmnist.train.images.shape[1:] == (3, 28, 28) and cmnist.train.images.dtype == np.uint8


@pytest.mark.data
def test_colours_are_the_recipes(cmnist):
    # the brightest pixel's colour of an image, divided by its max, points along the mean colour
    for k in range(0, 2000, 97):
        img = cmnist.train.images[k].reshape(3, -1).astype(float)
        pixel = img[:, img.sum(0).argmax()]
        expected = COLOURS[cmnist.train.bias[k]]
        cos = pixel @ expected / (np.linalg.norm(pixel) * np.linalg.norm(expected))
        assert cos > 0.99


@pytest.mark.data
def test_same_seed_same_bytes_other_seed_differs(tmp_path, monkeypatch):
    from conftest import require_data
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path))  # force fresh builds, not cache hits
    a = require_data(load_dataset, "colored_mnist", 0.01, seed=1)
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path / "second"))
    b = require_data(load_dataset, "colored_mnist", 0.01, seed=1)
    c = require_data(load_dataset, "colored_mnist", 0.01, seed=2)
    assert np.array_equal(a.train.images, b.train.images) and np.array_equal(a.test.images, b.test.images)
    assert np.array_equal(a.valid.images, b.valid.images) and np.array_equal(a.valid.bias, b.valid.bias)
    assert not np.array_equal(a.train.images, c.train.images)
    assert np.array_equal(a.train.bias, c.train.bias)  # the assignment is deterministic, only jitter differs


@pytest.mark.data
def test_unbiased_variant_has_uniform_colours():
    from conftest import require_data
    ds = require_data(load_dataset, "colored_mnist", 0.05, unbiased=True)
    assert abs(ds.train.aligned.mean() - 0.1) < 0.002
