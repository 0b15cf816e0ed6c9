"""Colored MNIST, exactly per the LfF recipe (Nam et al. 2020).

Each digit is coloured by its bias attribute ``a``: one colour per *image*,
``clamp(mean[a] + σ·ε, 0, 1)`` with ``ε ~ N(0, I₃)``, multiplied into the grey-scale digit and
truncated to uint8. σ comes from the severity (1..5 → 0.05, 0.02, 0.01, 0.005, 0.002). Attributes
follow the deterministic LfF assignment; the test split uses colours uniform over the ten (10 %
aligned), like LfF.
"""

from __future__ import annotations

import os

import numpy as np

from ddlib.sources import load_mnist
from ddlib.datasets.assignment import UNIFORM_RATIO, assign_attributes
from ddlib.datasets.base import BiasedDataset, BiasedSplit
from ddlib.datasets.registry import (DatasetSpec, cached_splits, dataset_from_splits, register_dataset, split_generators,
                       training_attribute_ratio)

# The ten mean colours of LfF's Colored MNIST (RGB in [0, 1]); attribute j is colour j.
COLOURS = np.array([
    [0.9837, 0.3125, 0.1686], [0.9905, 0.9156, 0.3515], [0.6730, 0.4611, 0.5798],
    [0.7833, 0.8316, 0.6013], [0.0880, 0.7780, 0.9818], [0.3214, 0.9611, 0.4464],
    [0.0246, 0.2357, 0.7587], [0.5552, 0.1016, 0.7618], [0.2077, 0.3929, 0.0187],
    [0.8337, 0.2024, 0.2669],
])
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

    def build():
        train_rng, test_rng = split_generators(spec.seed)
        ratio = training_attribute_ratio(spec)
        splits = {"train": make_split(mnist.train_images, mnist.train_labels, ratio, sigma, train_rng),
                  "test": make_split(mnist.test_images, mnist.test_labels, UNIFORM_RATIO, sigma, test_rng)}
        return splits, {"mnist": mnist.provenance, "sigma": sigma, "train_attribute_ratio": ratio}

    splits, provenance = cached_splits(spec, source_id, build)
    return dataset_from_splits(spec, splits, provenance, "Colored MNIST",
                               class_names=tuple(str(d) for d in range(10)), bias_names=COLOUR_NAMES,
                               dsa_strategy="color_crop_cutout_scale_rotate")
