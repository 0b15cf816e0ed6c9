"""Raw data sources: where the unbiased base data sets come from."""

from .cifar10 import CIFAR10_CLASSES, load_cifar10
from .fashion_mnist import FASHION_CLASSES, load_fashion_mnist
from .mnist import RawImageSet, load_mnist
from .roots import DATA_ROOT_ENV, DataSourceError, data_roots, offline

__all__ = ["CIFAR10_CLASSES", "DATA_ROOT_ENV", "DataSourceError", "FASHION_CLASSES", "RawImageSet", "data_roots",
           "load_cifar10", "load_fashion_mnist", "load_mnist", "offline"]
