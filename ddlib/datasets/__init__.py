"""Biased data sets behind one interface (:func:`load_dataset`)."""

from ddlib.datasets import colored_mnist  # noqa: F401  (registers the builder)
from ddlib.datasets import bffhq, bg_fmnist, corrupted_cifar10  # noqa: F401  (register their builders)
from ddlib.datasets.assignment import assign_attributes, conflicting_count
from ddlib.datasets.base import BiasedDataset, BiasedSplit
from ddlib.datasets.registry import DatasetInfo, DatasetSpec, dataset_info, dataset_names, load_dataset, register_dataset

__all__ = ["BiasedDataset", "BiasedSplit", "DatasetInfo", "DatasetSpec", "dataset_info", "assign_attributes", "conflicting_count",
           "dataset_names", "load_dataset", "register_dataset"]
