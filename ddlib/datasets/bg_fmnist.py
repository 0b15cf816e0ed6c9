"""BG Fashion-MNIST: background bias (our construction; the paper's recipe is not public).

Each grey-scale Fashion-MNIST item is composited over a background of one colour chosen by the
bias attribute ``a``: with ``α = item / 255`` (the item's own intensity is its opacity),
``image = α · item + (1 − α) · 255 · colour`` per channel, truncated to uint8. The colour is drawn
exactly like Colored MNIST's: one colour per image, ``clamp(mean[a] + σ·ε, 0, 1)`` with the ten LfF
mean colours and σ from the severity (1..5 → 0.05 … 0.002). So the item keeps its own grey shading
and only the background carries the bias. Attributes follow the deterministic LfF assignment at the
training ratio; the test split has background colours uniform over the ten (10 % aligned).

Splits: the training split is Fashion-MNIST's training images (LfF's exact conflicting counts). The
validation split is a stratified, deterministic 20 % of Fashion-MNIST's *test* images (every 5th
image of each class in data-set order, 2,000 of 10,000; :mod:`.validation`), the test split the
other 80 % (8,000). Both are built with the test protocol (background colours uniform over the ten,
10 % aligned), each with its own random stream for the colour jitter.

Options (part of the cache key): ``train_per_class`` / ``test_per_class`` keep only the first
samples of every class (data-set order) for small builds; ``test_per_class`` slices the source test
split *before* it is divided into validation and test (50 per class: 10 validation, 40 test).
"""

from __future__ import annotations

import os

import numpy as np

from ddlib.sources import FASHION_CLASSES, load_fashion_mnist
from ddlib.datasets.assignment import UNIFORM_RATIO, assign_attributes
from ddlib.datasets.base import BiasedDataset, BiasedSplit
from ddlib.datasets.colored_mnist import COLOUR_NAMES, COLOURS, jittered_colours, severity_sigma
from ddlib.datasets.registry import (DatasetSpec, cached_splits, dataset_from_splits, register_dataset, split_generators,
                       training_attribute_ratio)
from ddlib.datasets.subsets import first_per_class
from ddlib.datasets.validation import split_provenance, split_test_source


def paint_background(items: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """uint8 items [N, H, W] over backgrounds of colours [N, 3] in [0, 1] → uint8 [N, 3, H, W]."""
    item = items[:, None, :, :].astype(np.float32)
    alpha = item / 255.0
    background = 255.0 * colours[:, :, None, None].astype(np.float32)
    return (alpha * item + (1.0 - alpha) * background).astype(np.uint8)


def make_split(items: np.ndarray, targets: np.ndarray, conflict_ratio: float, sigma: float,
               rng: np.random.Generator) -> BiasedSplit:
    bias = assign_attributes(targets, conflict_ratio, len(COLOURS))
    images = paint_background(items, jittered_colours(bias, sigma, rng))
    return BiasedSplit(images, targets.astype(np.int64), bias, bias == targets)


@register_dataset("bg_fmnist", options=("train_per_class", "test_per_class"))
def build_bg_fmnist(spec: DatasetSpec, data_root: str | os.PathLike | None = None) -> BiasedDataset:
    sigma = severity_sigma(spec.severity)
    fashion = load_fashion_mnist(data_root)
    train_index = first_per_class(fashion.train_labels, spec.option("train_per_class"))
    valid_index, test_index = split_test_source(first_per_class(fashion.test_labels, spec.option("test_per_class")),
                                                fashion.test_labels)

    def build():
        train_rng, test_rng, valid_rng = split_generators(spec.seed)
        ratio = training_attribute_ratio(spec)
        splits = {"train": make_split(fashion.train_images[train_index], fashion.train_labels[train_index],
                                      ratio, sigma, train_rng),
                  "valid": make_split(fashion.test_images[valid_index], fashion.test_labels[valid_index],
                                      UNIFORM_RATIO, sigma, valid_rng),
                  "test": make_split(fashion.test_images[test_index], fashion.test_labels[test_index],
                                     UNIFORM_RATIO, sigma, test_rng)}
        return splits, {"fashion_mnist": fashion.provenance, "sigma": sigma, "train_attribute_ratio": ratio,
                        "construction": "item over a background of the attribute's jittered colour, "
                                        "alpha = item / 255",
                        **split_provenance("Fashion-MNIST test images", valid_index, test_index)}

    splits, provenance = cached_splits(spec, fashion.content_digest(), build)
    return dataset_from_splits(spec, splits, provenance, "BG Fashion-MNIST", class_names=FASHION_CLASSES,
                               bias_names=COLOUR_NAMES)
