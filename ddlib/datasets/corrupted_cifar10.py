"""Corrupted CIFAR-10 (LfF "type0"): the bias attribute is one of ten corruptions.

Attribute ``k`` is the ``k``-th of Snow, Frost, Fog, Brightness, Contrast, Spatter, Elastic, JPEG,
Pixelate, Saturate (:mod:`.corruptions`), assigned by the deterministic LfF rule at the training
ratio; the test split has corruptions uniform over the ten (10 % aligned), like Colored MNIST.

Splits: the training split is CIFAR-10's training images (LfF's exact conflicting counts). The
validation split is a stratified, deterministic 20 % of CIFAR-10's *test* images (every 5th image of
each class in data-set order, 2,000 of 10,000; :mod:`.validation`), the test split the other 80 %
(8,000). Both are built with the test protocol (corruptions uniform over the ten, 10 % aligned), each
with its own random stream for the corruptions' randomness.

``severity`` is the CIFAR-10-C corruption level 1..5; LfF's folder ``severity{s}`` is level
``s + 1``, so LfF's / DFA's standard data (``severity4``) is ``severity=5`` here, the default.

The images are generated once, in parallel over ``$DDLIB_WORKERS`` processes (default: the usable
cores, at most 8), and cached as uint8. When CIFAR-10 comes from the lossy JPEG copy the display
name says "CIFAR-10 (JPEG copy)". Options (part of the cache key): ``train_per_class`` /
``test_per_class`` keep only the first samples of every class for small builds; ``test_per_class``
slices the source test split *before* it is divided into validation and test.
"""

from __future__ import annotations

import os

import numpy as np

from ddlib.sources import CIFAR10_CLASSES, load_cifar10
from ddlib.datasets.assignment import assign_attributes
from ddlib.datasets.assignment import UNIFORM_RATIO
from ddlib.datasets.base import BiasedDataset, BiasedSplit
from ddlib.datasets.corruptions import CORRUPTION_NAMES, CORRUPTIONS, check_severity, corrupt_images, default_workers, \
    lff_folder_name
from ddlib.datasets.registry import (DatasetSpec, cached_splits, dataset_from_splits, register_dataset, split_generators,
                       training_attribute_ratio)
from ddlib.core.progress import SEPARATOR, variant_tag
from ddlib.datasets.subsets import first_per_class
from ddlib.datasets.validation import split_provenance, split_test_source


def make_split(images_hwc: np.ndarray, targets: np.ndarray, conflict_ratio: float, severity: int,
               rng: np.random.Generator, workers: int, desc: str) -> BiasedSplit:
    bias = assign_attributes(targets, conflict_ratio, len(CORRUPTIONS))
    corrupted = corrupt_images(images_hwc, bias, severity, rng, workers=workers, progress=True, desc=desc)
    return BiasedSplit(np.ascontiguousarray(corrupted.transpose(0, 3, 1, 2)), targets.astype(np.int64), bias,
                       bias == targets)


@register_dataset("corrupted_cifar10", default_severity=5, options=("train_per_class", "test_per_class"))
def build_corrupted_cifar10(spec: DatasetSpec, data_root: str | os.PathLike | None = None) -> BiasedDataset:
    check_severity(spec.severity)
    cifar = load_cifar10(data_root)
    train_index = first_per_class(cifar.train_labels, spec.option("train_per_class"))
    valid_index, test_index = split_test_source(first_per_class(cifar.test_labels, spec.option("test_per_class")),
                                                cifar.test_labels)
    base_name = cifar.provenance.get("display_name", "CIFAR-10")

    def build():
        import time
        train_rng, test_rng, valid_rng = split_generators(spec.seed)
        ratio = training_attribute_ratio(spec)
        workers = default_workers()
        start = time.perf_counter()
        tag = variant_tag(spec.name, spec.conflict_ratio, spec.unbiased)
        splits = {"train": make_split(cifar.train_images[train_index], cifar.train_labels[train_index], ratio,
                                      spec.severity, train_rng, workers, f"{tag}{SEPARATOR}corrupting train"),
                  "valid": make_split(cifar.test_images[valid_index], cifar.test_labels[valid_index], UNIFORM_RATIO,
                                      spec.severity, valid_rng, workers, f"{tag}{SEPARATOR}corrupting valid"),
                  "test": make_split(cifar.test_images[test_index], cifar.test_labels[test_index], UNIFORM_RATIO,
                                     spec.severity, test_rng, workers, f"{tag}{SEPARATOR}corrupting test")}
        return splits, {"cifar10": cifar.provenance, "train_attribute_ratio": ratio,
                        "corruption_level": spec.severity, "lff_folder": lff_folder_name(spec.severity),
                        "build_seconds": time.perf_counter() - start, "build_workers": workers,
                        **split_provenance(f"{base_name} test images", valid_index, test_index)}

    splits, provenance = cached_splits(spec, cifar.content_digest(), build)
    return dataset_from_splits(spec, splits, provenance, f"Corrupted {base_name}", detail=f"level {spec.severity}",
                               class_names=CIFAR10_CLASSES, bias_names=CORRUPTION_NAMES)
