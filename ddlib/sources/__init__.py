"""Raw data sources: where the unbiased base data sets come from."""

from ddlib.sources.cifar10 import CIFAR10_CLASSES, load_cifar10
from ddlib.sources.fashion_mnist import FASHION_CLASSES, load_fashion_mnist
from ddlib.sources.mnist import RawImageSet, load_mnist
from ddlib.sources.roots import DATA_ROOT_ENV, DataSourceError, data_roots, offline

__all__ = ["CIFAR10_CLASSES", "DATA_ROOT_ENV", "DataSourceError", "FASHION_CLASSES", "RawImageSet", "data_roots",
           "load_cifar10", "load_fashion_mnist", "load_mnist", "offline"]
