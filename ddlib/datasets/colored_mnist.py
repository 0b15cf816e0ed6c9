"""Colored MNIST, exactly per the LfF recipe (Nam et al. 2020).

Each digit is coloured by its bias attribute ``a``: one colour per *image*,
``clamp(mean[a] + σ·ε, 0, 1)`` with ``ε ~ N(0, I₃)``, multiplied into the grey-scale digit and
truncated to uint8. σ comes from the severity (1..5 → 0.05, 0.02, 0.01, 0.005, 0.002). Attributes
follow the deterministic LfF assignment; the test split uses colours uniform over the ten (10 %
aligned), like LfF.

Splits: the training split is all 60,000 MNIST training images (LfF's exact conflicting counts,
e.g. 3,000 at 5 %). The validation split is a stratified, deterministic 20 % of MNIST's *test*
images (per class ``round(0.2 · n_c)`` evenly spaced images in data-set order, i.e. about every 5th;
2,000 images; :mod:`.validation`), the test split the other 80 % (8,000). Both are built with the
test protocol (colours uniform over the ten, 10 % aligned), each with its own random stream for the
colour jitter.
"""

from __future__ import annotations

import os

import numpy as np

from ddlib.sources import load_mnist
from ddlib.datasets.assignment import UNIFORM_RATIO, assign_attributes
from ddlib.datasets.base import BiasedDataset, BiasedSplit
from ddlib.datasets.registry import (DatasetSpec, cached_splits, dataset_from_splits, register_dataset, split_generators,
                       training_attribute_ratio)
from ddlib.datasets.validation import split_provenance, split_test_source

# The ten mean colours of LfF's Colored MNIST (RGB in [0, 1]); attribute j is colour j. The values
# are the float32 tensor [10, 3, 1, 1] of LfF's ``data/resource/colors.th`` (github.com/alinlab/LfF,
# commit e66796ec117ea52d2e44176055b7ef7959680a1b, blob 42db291ac11492af85af7dd9ca76cdead01e5567),
# each written as the shortest decimal of its float64 value, so that ``np.float32`` gives the
# exact bits back (rounded to 4 decimals they are the table this project used before).
COLOURS = np.array([
    [0.9836823344230652, 0.31251901388168335, 0.16857534646987915],
    [0.9905296564102173, 0.9156052470207214, 0.35151219367980957],
    [0.6729639768600464, 0.4610704779624939, 0.5798081755638123],
    [0.783251941204071, 0.8315559029579163, 0.6013293862342834],
    [0.08801579475402832, 0.7779633402824402, 0.9818077683448792],
    [0.32139337062835693, 0.9610545635223389, 0.446449875831604],
    [0.024615883827209473, 0.23565047979354858, 0.7586662769317627],
    [0.5552469491958618, 0.10158014297485352, 0.7617631554603577],
    [0.2077232003211975, 0.3929485082626343, 0.018702387809753418],
    [0.8336576223373413, 0.2024092674255371, 0.266943097114563],
], dtype=np.float32)
COLOUR_NAMES = ("red", "yellow", "mauve", "sage", "cyan", "green", "blue", "purple", "olive", "crimson")
SEVERITY_SIGMA = {1: 0.05, 2: 0.02, 3: 0.01, 4: 0.005, 5: 0.002}


def severity_sigma(severity: int) -> float:
    if severity not in SEVERITY_SIGMA:
        raise ValueError(f"severity must be one of {sorted(SEVERITY_SIGMA)}, got {severity}")
    return SEVERITY_SIGMA[severity]


def jittered_colours(attributes: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """One colour per image: clamp(mean[a] + σ·ε, 0, 1), ε ~ N(0, I₃) drawn per image."""
    eps = rng.standard_normal((len(attributes), 3))
    return np.clip(COLOURS[attributes] + sigma * eps, 0.0, 1.0)


def colourise(digits: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """uint8 digits [N, H, W] × colours [N, 3] → uint8 images [N, 3, H, W] (truncated)."""
    out = colours[:, :, None, None].astype(np.float32) * digits[:, None, :, :].astype(np.float32)
    return out.astype(np.uint8)


def make_split(digits: np.ndarray, targets: np.ndarray, conflict_ratio: float, sigma: float,
               rng: np.random.Generator) -> BiasedSplit:
    bias = assign_attributes(targets, conflict_ratio, len(COLOURS))
    images = colourise(digits, jittered_colours(bias, sigma, rng))
    return BiasedSplit(images, targets.astype(np.int64), bias, bias == targets)


@register_dataset("colored_mnist")
def build_colored_mnist(spec: DatasetSpec, data_root: str | os.PathLike | None = None) -> BiasedDataset:
    sigma = severity_sigma(spec.severity)
    mnist = load_mnist(data_root)
    source_id = mnist.content_digest()  # by content, never by path

    valid_index, test_index = split_test_source(np.arange(len(mnist.test_labels)), mnist.test_labels)

    def build():
        train_rng, test_rng, valid_rng = split_generators(spec.seed)
        ratio = training_attribute_ratio(spec)
        splits = {"train": make_split(mnist.train_images, mnist.train_labels, ratio, sigma, train_rng),
                  "valid": make_split(mnist.test_images[valid_index], mnist.test_labels[valid_index], UNIFORM_RATIO,
                                      sigma, valid_rng),
                  "test": make_split(mnist.test_images[test_index], mnist.test_labels[test_index], UNIFORM_RATIO,
                                     sigma, test_rng)}
        return splits, {"mnist": mnist.provenance, "sigma": sigma, "train_attribute_ratio": ratio,
                        **split_provenance("MNIST test images", valid_index, test_index)}

    splits, provenance = cached_splits(spec, source_id, build)
    return dataset_from_splits(spec, splits, provenance, "Colored MNIST",
                               class_names=tuple(str(d) for d in range(10)), bias_names=COLOUR_NAMES)
