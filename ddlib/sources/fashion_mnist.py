"""Fashion-MNIST (Xiao et al. 2017), from the first source that has it.

Order: (1) a data root (``$DDLIB_DATA_ROOT`` or the ``data_root`` argument) holding the four idx
files (raw or ``.gz``) in torchvision's ``FashionMNIST/raw/`` layout or a ``fashion-mnist/``
folder; (2) a previous download in the cache; (3) torchvision's download; (4) the Debian package
``dataset-fashion-mnist``'s system path ``/usr/share/datasets/fashion-mnist``; (5) a
:class:`DataSourceError` that lists these options.
"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import numpy as np

from ddlib.core.cache import cache_root, check_writable
from ddlib.sources.idx import find_idx_set, read_idx_set
from ddlib.sources.mnist import RawImageSet, check_raw_arrays
from ddlib.sources.roots import DataSourceError, data_roots, offline
from ddlib.sources.wheels import download_lock

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_TRAIN_COUNT, FASHION_TEST_COUNT = 60_000, 10_000
DEBIAN_PATH = Path("/usr/share/datasets/fashion-mnist")
ROOT_FOLDERS = ("FashionMNIST/raw", "fashion-mnist", "fashion_mnist", "FashionMNIST")


def _validate(arrays: dict[str, np.ndarray], origin: str) -> None:
    check_raw_arrays(arrays, "Fashion-MNIST", origin, FASHION_TRAIN_COUNT, FASHION_TEST_COUNT, (28, 28))


def _idx_folder_candidates(roots: list[Path]) -> list[Path]:
    return [root / sub for root in roots for sub in ROOT_FOLDERS]


def _from_torchvision(download_dir: Path, timeout_s: float = 20.0) -> Path:
    """Download with torchvision; returns the folder holding the idx files."""
    from torchvision.datasets import FashionMNIST  # local import: torchvision is slow to import

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)  # fail fast when there is no network
    try:
        FashionMNIST(str(download_dir), train=True, download=True)
        FashionMNIST(str(download_dir), train=False, download=True)
    finally:
        socket.setdefaulttimeout(previous)
    return download_dir / "FashionMNIST" / "raw"


def _load_folder(folder: Path, origin: str) -> RawImageSet:
    files = find_idx_set(folder)
    assert files is not None
    try:
        arrays = read_idx_set(files)
    except (ValueError, OSError) as exc:
        raise DataSourceError(f"Fashion-MNIST idx files in {folder} cannot be used: {exc}") from exc
    _validate(arrays, origin)
    provenance = {"source": origin, "folder": str(folder),
                  "train_images_sha256": hashlib.sha256(arrays["train_images"].tobytes()).hexdigest()}
    return RawImageSet("fashion_mnist", **arrays, provenance=provenance)


def load_fashion_mnist(data_root: str | os.PathLike | None = None, allow_download: bool = True,
                       system_path: Path = DEBIAN_PATH) -> RawImageSet:
    """Fashion-MNIST train (60k) and test (10k) as uint8 [N, 28, 28] arrays with int64 labels."""
    roots = data_roots(data_root)
    for folder in _idx_folder_candidates(roots):
        if find_idx_set(folder) is not None:
            return _load_folder(folder, f"idx files in {folder}")

    download_dir = cache_root() / "downloads" / "torchvision"
    if find_idx_set(download_dir / "FashionMNIST" / "raw") is not None:  # an earlier download
        return _load_folder(download_dir / "FashionMNIST" / "raw", "torchvision download (cached)")
    errors: list[str] = []
    if allow_download and not offline():
        check_writable()  # the download goes into the cache: a read-only cache is the cause to name
        try:
            with download_lock("torchvision-fashion-mnist"):  # concurrent jobs: one downloads
                if find_idx_set(download_dir / "FashionMNIST" / "raw") is not None:  # another job's
                    return _load_folder(download_dir / "FashionMNIST" / "raw", "torchvision download (cached)")
                folder = _from_torchvision(download_dir)
            return _load_folder(folder, "torchvision download")
        except Exception as exc:  # noqa: BLE001 - every failure just moves on to the next source
            errors.append(f"torchvision download: {type(exc).__name__}: {str(exc)[:300]}")
    if find_idx_set(system_path) is not None:
        return _load_folder(system_path, f"Debian package dataset-fashion-mnist ({system_path})")
    errors.append(f"{system_path}: not present")

    searched = ", ".join(str(f) for f in _idx_folder_candidates(roots)) or "(no data root configured)"
    raise DataSourceError(
        "Fashion-MNIST is not available. Provide it in one of these ways:\n"
        "  1. put the four idx files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],\n"
        "     t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]) in <root>/FashionMNIST/raw/ or\n"
        f"     <root>/fashion-mnist/ and set $DDLIB_DATA_ROOT=<root> (searched: {searched});\n"
        "  2. allow torchvision to download it (needs internet; unset DDLIB_OFFLINE);\n"
        f"  3. install the Debian package dataset-fashion-mnist (files in {system_path}).\n"
        "Attempts made:\n  " + "\n  ".join(errors)
    )
