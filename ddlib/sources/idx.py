"""Readers for the idx file format of MNIST and Fashion-MNIST (optionally gzip-compressed)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: Path) -> np.ndarray:
    """Read one idx file (``.gz`` or raw) into a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ValueError(f"{path} is a truncated or corrupted gzip file ({type(exc).__name__}: {exc}); "
                         "replace it with an intact copy (or delete it to use another source)") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an idx file (bad magic number); replace it with an intact copy")
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if ndim == 0 or len(data) < offset or 0 in shape:
        raise ValueError(f"{path} has a damaged header (it declares {ndim} dimension(s) of sizes {shape}); "
                         "replace it with an intact copy")
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - offset != expected:
        raise ValueError(f"{path} is truncated or its header damaged: the header declares shape {shape} "
                         f"({expected} bytes of data), the file holds {len(data) - offset}; "
                         "replace it with an intact copy")
    return np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape).astype(dtype.newbyteorder("="))


IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def find_idx_set(folder: Path) -> dict[str, Path] | None:
    """The four idx files in ``folder`` (raw or ``.gz``), or None when any is missing."""
    found = {}
    for key, stem in IDX_NAMES.items():
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.exists():
                found[key] = candidate
                break
        else:
            return None
    return found


def read_idx_set(files: dict[str, Path]) -> dict[str, np.ndarray]:
    arrays = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"inconsistent idx {split} split ({files[f'{split}_images']}, "
                             f"{files[f'{split}_labels']}): images {images.shape}, labels {labels.shape}")
        arrays[f"{split}_labels"] = labels.astype(np.int64)
    return arrays
