"""BG Fashion-MNIST, Corrupted CIFAR-10 and BFFHQ: counts, flags, determinism, corruptions, sources."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
import torch
from conftest import require_data
from PIL import Image
from scipy import ndimage

from ddlib.datasets import bg_fmnist, conflicting_count, corrupted_cifar10, dataset_names, load_dataset
from ddlib.datasets.assignment import assign_attributes
from ddlib.datasets.corruptions import (CORRUPTIONS, SEVERITIES, corrupt_image, corrupt_images, lff_folder_name,
                                        motion_blur, plasma_fractal)
from ddlib.datasets.subsets import first_per_class
from ddlib.distill.dm import DMConfig, distill_dm
from ddlib.training.evaluation import EvalSettings, evaluate_images
from ddlib.models import ConvNetConfig
from ddlib.sources import DataSourceError, load_cifar10, load_fashion_mnist
from ddlib.sources.cifar10 import decode_image_folder, image_folder_entries_from_tar, is_jpeg_copy
from ddlib.training import TrainConfig

TINY_MODEL = ConvNetConfig(depth=2, width=8, norm="instancenorm", pooling="avgpooling")
TINY_DM = DMConfig(iterations=2, batch_real=8, model=TINY_MODEL, checkpoint_every=0)
TINY_EVAL = TrainConfig(epochs=2, batch_size=64, model=TINY_MODEL)


def smooth_images(n: int, seed: int = 0, size: int = 32) -> np.ndarray:
    """Colourful smooth uint8 [n, size, size, 3] images (stand-ins for CIFAR in data-free tests)."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 1, (n, size, size, 3))
    smooth = np.stack([ndimage.gaussian_filter(img, (3, 3, 0)) for img in noise])
    lo, hi = smooth.min(axis=(1, 2, 3), keepdims=True), smooth.max(axis=(1, 2, 3), keepdims=True)
    return ((smooth - lo) / (hi - lo) * 200 + 25).astype(np.uint8)


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def check_flags(split, num_attributes: int) -> None:
    assert split.images.dtype == np.uint8 and split.images.ndim == 4
    assert np.array_equal(split.aligned, split.bias == split.targets)
    assert split.bias.min() >= 0 and split.bias.max() < num_attributes


# -- registry ------------------------------------------------------------------------------------
def test_all_four_data_sets_are_registered():
    assert {"colored_mnist", "bg_fmnist", "corrupted_cifar10", "bffhq"} <= set(dataset_names())


def test_first_per_class_keeps_order_and_balance():
    labels = np.array([0, 1, 0, 2, 1, 0, 2, 2, 1])
    assert first_per_class(labels, 2).tolist() == [0, 1, 2, 3, 4, 6]
    assert first_per_class(labels, None).tolist() == list(range(9))
    with pytest.raises(ValueError, match="positive"):
        first_per_class(labels, 0)


# -- corruptions ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corruption_inputs() -> np.ndarray:
    return smooth_images(24)


@pytest.fixture(scope="module")
def mad_by_level(corruption_inputs) -> dict[str, list[float]]:
    x = corruption_inputs
    return {name: [mad(corrupt_images(x, k, s, np.random.default_rng(0)), x) for s in SEVERITIES]
            for k, name in enumerate(CORRUPTIONS)}


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_corruption_is_deterministic_and_changes_the_image(name, corruption_inputs):
    x = corruption_inputs[:6]
    k = CORRUPTIONS.index(name)
    a = corrupt_images(x, k, 5, np.random.default_rng(7))
    b = corrupt_images(x, k, 5, np.random.default_rng(7))
    assert a.dtype == np.uint8 and a.shape == x.shape
    assert np.array_equal(a, b)
    for s in SEVERITIES:
        assert mad(corrupt_images(x, k, s, np.random.default_rng(7)), x) > 0.3, f"{name} level {s} barely changes"


def test_random_corruptions_depend_on_the_seed(corruption_inputs):
    x = corruption_inputs[:4]
    for name in ("snow", "frost", "fog", "spatter", "elastic"):
        k = CORRUPTIONS.index(name)
        assert not np.array_equal(corrupt_images(x, k, 5, np.random.default_rng(1)),
                                  corrupt_images(x, k, 5, np.random.default_rng(2))), name


# The CIFAR-10-C constants make the change grow with the level for these six corruptions.
MONOTONE = ("snow", "fog", "brightness", "contrast", "jpeg", "pixelate")


@pytest.mark.parametrize("name", MONOTONE)
def test_change_grows_with_severity(name, mad_by_level):
    levels = mad_by_level[name]
    assert all(a < b for a, b in zip(levels, levels[1:])), f"{name}: {levels}"


def test_change_grows_within_each_regime_of_the_two_regime_corruptions(mad_by_level):
    # saturate: levels 1-2 desaturate (x0.3, x0.1), levels 3-5 oversaturate (x1.5, x2 +0.1, x2.5 +0.2)
    sat = mad_by_level["saturate"]
    assert sat[0] < sat[1] and sat[2] < sat[3] < sat[4]
    # spatter: levels 1-3 water drops, 4-5 mud, which hides more of the image
    spat = mad_by_level["spatter"]
    assert spat[0] < spat[1] and max(spat[:3]) < spat[3] < spat[4]
    # frost: the texture weight grows (0.2 .. 0.45) while the image weight shrinks from level 3
    frost = mad_by_level["frost"]
    assert frost[0] < frost[1] < frost[2] and frost[0] < frost[4]


def test_elastic_follows_the_reference_constants(mad_by_level):
    # CIFAR-10-C's elastic shrinks the random affine jitter (2.56 px at level 1 → 0.96 px at level 5)
    # while the local displacement grows, so its mean absolute change *falls* with the level. We keep
    # the reference constants (LfF's data used them) and pin this behaviour.
    levels = mad_by_level["elastic"]
    assert levels[0] > levels[-1] > 0.3


def test_parallel_build_equals_serial_build(corruption_inputs):
    x = corruption_inputs
    ids = np.arange(len(x)) % len(CORRUPTIONS)
    serial = corrupt_images(x, ids, 5, np.random.default_rng(3), workers=1, chunk_size=5)
    parallel = corrupt_images(x, ids, 5, np.random.default_rng(3), workers=2, chunk_size=5)
    assert np.array_equal(serial, parallel)


def test_corruption_input_checks(corruption_inputs):
    with pytest.raises(ValueError, match="1..5"):
        corrupt_images(corruption_inputs, 0, 6, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown corruption"):
        corrupt_image(corruption_inputs[0], "rain", 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="uint8"):
        corrupt_images(corruption_inputs.astype(np.float32), 0, 3, np.random.default_rng(0))


def test_severity_maps_to_lff_folders():
    assert lff_folder_name(5) == "severity4" and lff_folder_name(2) == "severity1" and lff_folder_name(1) is None


def test_motion_blur_preserves_a_constant_layer_and_smears_a_point():
    flat = np.full((32, 32), 0.4)
    assert np.allclose(motion_blur(flat, 6, 3, -90), 0.4)
    point = np.zeros((32, 32))
    point[16, 16] = 1.0
    blurred = motion_blur(point, 6, 3, -90)
    assert np.isclose(blurred.sum(), 1.0) and (blurred > 0).sum() > 3 and blurred.max() < 1.0


def test_plasma_fractal_is_normalised():
    field = plasma_fractal(np.random.default_rng(0), 32, 2.0)
    assert field.shape == (32, 32) and np.isclose(field.min(), 0) and np.isclose(field.max(), 1)


# -- BG Fashion-MNIST construction ---------------------------------------------------------------
def test_background_is_painted_behind_the_item():
    items = np.array([[[0, 255], [128, 0]]], dtype=np.uint8)
    colour = np.array([[1.0, 0.5, 0.0]])
    out = bg_fmnist.paint_background(items, colour)
    assert out.shape == (1, 3, 2, 2)
    assert out[0, :, 0, 0].tolist() == [255, 127, 0]   # pure background
    assert out[0, :, 0, 1].tolist() == [255, 255, 255]  # opaque item keeps its grey
    # half-transparent item: 128·128/255 + (1 − 128/255)·255·c, truncated
    expected = (128 / 255 * 128 + (1 - 128 / 255) * 255 * colour[0]).astype(np.uint8)
    assert np.abs(out[0, :, 1, 0].astype(int) - expected.astype(int)).max() <= 1


def test_bg_fmnist_split_is_deterministic_under_its_seed():
    items = np.random.default_rng(0).integers(0, 256, (200, 28, 28), dtype=np.uint8)
    targets = np.repeat(np.arange(10), 20)
    a = bg_fmnist.make_split(items, targets, 0.05, 0.005, np.random.default_rng(4))
    b = bg_fmnist.make_split(items, targets, 0.05, 0.005, np.random.default_rng(4))
    c = bg_fmnist.make_split(items, targets, 0.05, 0.005, np.random.default_rng(5))
    assert a.images.tobytes() == b.images.tobytes() and a.images.tobytes() != c.images.tobytes()
    check_flags(a, 10)


def test_corrupted_split_is_deterministic_and_flags_follow_the_assignment():
    images = smooth_images(40, seed=1)
    targets = np.repeat(np.arange(10), 4)
    a = corrupted_cifar10.make_split(images, targets, 0.5, 5, np.random.default_rng(9), 1, "t")
    b = corrupted_cifar10.make_split(images, targets, 0.5, 5, np.random.default_rng(9), 2, "t")
    assert a.images.tobytes() == b.images.tobytes() and a.images.shape == (40, 3, 32, 32)
    assert np.array_equal(a.bias, assign_attributes(targets, 0.5, 10))
    check_flags(a, 10)


# -- exact counts (the assignment at the real class sizes) ---------------------------------------
@pytest.mark.parametrize("ratio, expected", [(0.005, 250), (0.01, 500), (0.02, 1000), (0.05, 2500)])
def test_cifar10_counts_per_ratio(ratio, expected):
    assert conflicting_count([5000] * 10, ratio, 10) == expected


@pytest.mark.parametrize("ratio, expected", [(0.005, 300), (0.01, 600), (0.02, 1200), (0.05, 3000)])
def test_fashion_mnist_counts_per_ratio(ratio, expected):
    assert conflicting_count([6000] * 10, ratio, 10) == expected


# -- real data -----------------------------------------------------------------------------------
@pytest.mark.data
@pytest.mark.parametrize("ratio, expected", [(0.005, 300), (0.01, 600), (0.02, 1200), (0.05, 3000)])
def test_bg_fmnist_full_build_has_exact_counts(ratio, expected):
    ds = require_data(load_dataset, "bg_fmnist", ratio)
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (60_000, 2_000, 8_000)
    assert ds.train.conflicting_count == expected
    table = ds.train.count_table(10, 10)
    assert (np.diag(table) == 6000 - expected // 10).all()
    assert (table.sum(axis=0) - np.diag(table)).sum() == expected
    check_flags(ds.train, 10)
    check_flags(ds.valid, 10)
    check_flags(ds.test, 10)
    assert (ds.test.count_table(10, 10) == 80).all()  # test backgrounds uniform: 800 per class / 10
    assert (ds.valid.count_table(10, 10) == 20).all()  # validation too: 200 per class / 10
    assert ds.train.images.shape[1:] == (3, 28, 28)


@pytest.mark.data
def test_bg_fmnist_same_seed_same_bytes_without_the_cache(tmp_path, monkeypatch):
    builds = []
    for k, seed in enumerate((1, 1, 2)):
        monkeypatch.setenv("DDLIB_CACHE", str(tmp_path / f"cache{k}"))
        builds.append(require_data(load_dataset, "bg_fmnist", 0.05, seed=seed, train_per_class=50,
                                   test_per_class=10))
    a, b, c = builds
    assert a.train.images.tobytes() == b.train.images.tobytes()
    assert a.train.images.tobytes() != c.train.images.tobytes()
    assert a.fingerprint == b.fingerprint != c.fingerprint


@pytest.mark.data
@pytest.mark.parametrize("ratio, per_class_conflicts", [(0.02, 4), (0.05, 10)])
def test_corrupted_cifar10_slice_has_exact_counts(ratio, per_class_conflicts):
    ds = require_data(load_dataset, "corrupted_cifar10", ratio, severity=5, train_per_class=200,
                      test_per_class=50)
    # test_per_class slices the source test split first, then 20 % of it becomes the validation split
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (2000, 100, 400)
    assert ds.train.conflicting_count == 10 * per_class_conflicts
    assert (np.diag(ds.train.count_table(10, 10)) == 200 - per_class_conflicts).all()
    assert (ds.test.count_table(10, 10) == 4).all() and (ds.valid.count_table(10, 10) == 1).all()
    check_flags(ds.train, 10)
    check_flags(ds.valid, 10)
    check_flags(ds.test, 10)
    assert ds.train.images.shape[1:] == (3, 32, 32)
    if ds.provenance["cifar10"].get("jpeg_copy"):
        assert "CIFAR-10 (JPEG copy)" in ds.display_name
    assert ds.provenance["lff_folder"] == "severity4"


@pytest.mark.data
def test_cifar10_source_loads_and_is_labelled():
    cifar = require_data(load_cifar10)
    assert cifar.train_images.shape == (50_000, 32, 32, 3) and cifar.test_images.shape == (10_000, 32, 32, 3)
    assert (np.bincount(cifar.train_labels) == 5000).all()
    assert cifar.provenance["display_name"] in ("CIFAR-10", "CIFAR-10 (JPEG copy)")
    assert cifar.provenance["jpeg_copy"] == (cifar.provenance["display_name"] == "CIFAR-10 (JPEG copy)")


@pytest.mark.data
def test_fashion_mnist_source_loads():
    fashion = require_data(load_fashion_mnist)
    assert fashion.train_images.shape == (60_000, 28, 28) and (np.bincount(fashion.train_labels) == 6000).all()


# -- sources: image-folder decoding and missing data ----------------------------------------------
def _jpeg_bytes(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_image_folder_tar_is_decoded_with_labels_from_class_folders(tmp_path):
    archive = tmp_path / "mini.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("train", "test"):
            for cls, colour in (("truck", (250, 0, 0)), ("airplane", (0, 0, 250))):
                for k in range(2):
                    data = _jpeg_bytes(colour)
                    info = tarfile.TarInfo(f"{split}/{cls}/{k:04d}.jpg")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    entries = image_folder_entries_from_tar(archive)
    arrays = decode_image_folder(entries, "test archive")
    assert arrays["train_labels"].tolist() == [0, 0, 9, 9] and arrays["test_images"].shape == (4, 32, 32, 3)
    assert arrays["train_images"][0, 0, 0, 2] > 200 and arrays["train_images"][3, 0, 0, 0] > 200
    assert is_jpeg_copy([e[2] for e in entries])


def _empty_world(tmp_path, monkeypatch):
    monkeypatch.delenv("DDLIB_DATA_ROOT", raising=False)
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path / "cache"))
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def test_missing_fashion_mnist_gives_the_documented_error(tmp_path, monkeypatch):
    root = _empty_world(tmp_path, monkeypatch)
    with pytest.raises(DataSourceError, match="Fashion-MNIST is not available") as info:
        load_fashion_mnist(root, allow_download=False, system_path=tmp_path / "no-debian")
    assert "FashionMNIST/raw" in str(info.value) and "DDLIB_DATA_ROOT" in str(info.value)


def test_missing_cifar10_gives_the_documented_error(tmp_path, monkeypatch):
    root = _empty_world(tmp_path, monkeypatch)
    with pytest.raises(DataSourceError, match="CIFAR-10 is not available") as info:
        load_cifar10(root, allow_download=False)
    assert "cifar-10-batches-py" in str(info.value) and "cifar10-jpeg" in str(info.value)


def test_missing_bffhq_gives_the_documented_error(tmp_path, monkeypatch):
    root = _empty_world(tmp_path, monkeypatch)
    with pytest.raises(DataSourceError, match="BFFHQ not found") as info:
        load_dataset("bffhq", 0.005, data_root=root)
    assert "bffhq/0.5pct/align" in str(info.value) and "Learning-Debiased-Disentangled" in str(info.value)


# -- BFFHQ on a generated fixture ----------------------------------------------------------------
def test_bffhq_fixture_loads_with_the_right_labels(bffhq_root):
    ds = load_dataset("bffhq", 0.005, data_root=bffhq_root, image_size=16)
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (10, 4, 5)
    assert ds.train.images.shape == (10, 3, 16, 16) and ds.class_names == ("young", "old")
    assert ds.train.conflicting_count == 2 and ds.test.conflicting_count == 3
    for split in (ds.train, ds.valid, ds.test):
        check_flags(split, 2)
        # the colour written into each image encodes its labels: red channel ↔ age, green ↔ gender
        assert np.array_equal(split.images[:, 0, 8, 8] > 120, split.targets == 1)
        assert np.array_equal(split.images[:, 1, 8, 8] > 120, split.bias == 1)


def test_bffhq_rejects_other_ratios_and_misfiled_images(bffhq_root):
    with pytest.raises(ValueError, match="0.005"):
        load_dataset("bffhq", 0.05, data_root=bffhq_root)
    Image.new("RGB", (24, 24)).save(bffhq_root / "bffhq/0.5pct/align/0/99999_0_1.png")
    with pytest.raises(DataSourceError, match="align"):
        load_dataset("bffhq", 0.005, data_root=bffhq_root, image_size=16)


# -- every data set goes through DM and the evaluation protocol ----------------------------------
def _distil_and_evaluate(ds):
    syn = distill_dm(ds, 1, TINY_DM, progress=False, use_cache=False)
    assert syn.images.shape == (ds.num_classes, ds.channels, *ds.image_size)
    assert torch.isfinite(syn.images).all()
    result = evaluate_images(ds, syn.images, syn.labels, EvalSettings(TINY_EVAL, n_models=1), device=torch.device("cpu"),
                             progress=False)
    acc = result.mean
    assert 0.0 <= acc.overall <= 1.0 and 0.0 <= acc.aligned <= 1.0 and 0.0 <= acc.conflicting <= 1.0


def test_bffhq_runs_through_dm_and_evaluation(bffhq_root):
    _distil_and_evaluate(load_dataset("bffhq", 0.005, data_root=bffhq_root, image_size=32))


@pytest.mark.data
def test_bg_fmnist_runs_through_dm_and_evaluation():
    _distil_and_evaluate(require_data(load_dataset, "bg_fmnist", 0.05, train_per_class=30, test_per_class=10))


@pytest.mark.data
def test_corrupted_cifar10_runs_through_dm_and_evaluation():
    _distil_and_evaluate(require_data(load_dataset, "corrupted_cifar10", 0.05, severity=5, train_per_class=30,
                                      test_per_class=10))


@pytest.mark.parametrize("name", ["brightness", "contrast", "saturate"])
def test_batched_corruptions_equal_the_per_image_ones(name, corruption_inputs):
    x = corruption_inputs[:5]
    batched = corrupt_images(x, CORRUPTIONS.index(name), 4, np.random.default_rng(0))
    single = np.stack([corrupt_image(img, name, 4, np.random.default_rng(0)) for img in x])
    assert np.array_equal(batched, single)
