"""Raw data sources: where the unbiased base data sets come from."""

from .mnist import RawImageSet, load_mnist
from .roots import DATA_ROOT_ENV, DataSourceError, data_roots, offline

__all__ = ["DATA_ROOT_ENV", "DataSourceError", "RawImageSet", "data_roots", "load_mnist", "offline"]
