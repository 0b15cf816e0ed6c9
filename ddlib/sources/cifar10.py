"""CIFAR-10 (Krizhevsky 2009), from the first source that has it.

Order: (1) a data root (``$DDLIB_DATA_ROOT`` or ``data_root``) holding torchvision's batch layout
``cifar-10-batches-py/``; (2) a data root holding an image-folder layout ``train/<class>/*.jpg|png``
and ``test/<class>/*``, either as folders or inside a ``.tar.gz`` (e.g. the JPEG copy
``cifar10-jpeg/cifar10_jpeg.tar.gz``) — decoded once into the cache; (3) a previous torchvision
download in the cache, then torchvision's download; (4) a :class:`DataSourceError` listing these.

A JPEG image-folder copy is lossy, so it is labelled: the returned provenance carries
``display_name = "CIFAR-10 (JPEG copy)"`` and ``jpeg_copy = True``, and every data set built on it
puts that name in its display name (hence in every table and figure).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import socket
import tarfile
import zlib
from pathlib import Path

import numpy as np

from ddlib.core.cache import (ArtifactDir, cache_root, check_writable, folder_content_digest, save_npz,
                              sha256_file)
from ddlib.sources.mnist import RawImageSet, check_raw_arrays
from ddlib.sources.roots import DataSourceError, data_roots, offline
from ddlib.sources.wheels import download_lock

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_TRAIN_COUNT, CIFAR10_TEST_COUNT = 50_000, 10_000
BATCH_FOLDER = "cifar-10-batches-py"
BATCH_PARENTS = ("", "cifar10", "CIFAR10", "cifar-10")
IMAGE_FOLDER_PARENTS = ("cifar10-jpeg", "cifar10_jpeg", "CIFAR-10-images", "cifar10", "CIFAR10", "")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
JPEG_DISPLAY_NAME = "CIFAR-10 (JPEG copy)"


def _validate(arrays: dict[str, np.ndarray], origin: str) -> None:
    check_raw_arrays(arrays, "CIFAR-10", origin, CIFAR10_TRAIN_COUNT, CIFAR10_TEST_COUNT, (32, 32, 3))


# -- torchvision's batch layout -------------------------------------------------------------------
def _read_batches(folder: Path) -> dict[str, np.ndarray]:
    def read(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        images, labels = [], []
        for name in names:
            with open(folder / name, "rb") as fh:
                # The official distribution format is a pickle (torchvision reads it the same way).
                batch = pickle.load(fh, encoding="latin1")
            images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.append(np.asarray(batch["labels"], dtype=np.int64))
        return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)

    train_images, train_labels = read([f"data_batch_{k}" for k in range(1, 6)])
    test_images, test_labels = read(["test_batch"])
    return {"train_images": train_images, "train_labels": train_labels,
            "test_images": test_images, "test_labels": test_labels}


def _has_batches(folder: Path) -> bool:
    return all((folder / n).exists() for n in [*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"])


# -- image-folder layout (folders or a tar.gz) -----------------------------------------------------
def _label_of(class_folder: str, origin: str) -> int:
    if class_folder not in CIFAR10_CLASSES:
        raise DataSourceError(f"{origin}: unknown class folder {class_folder!r}; expected one of {CIFAR10_CLASSES}")
    return CIFAR10_CLASSES.index(class_folder)


def decode_image_folder(entries: list[tuple[str, int, str, bytes]], origin: str) -> dict[str, np.ndarray]:
    """``entries`` of (split, label, file name, encoded bytes) → arrays in (split, label, name) order."""
    from PIL import Image

    arrays: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        chosen = sorted((e for e in entries if e[0] == split), key=lambda e: (e[1], e[2]))
        if not chosen:
            raise DataSourceError(f"{origin}: no {split}/<class>/ images found")
        images = np.empty((len(chosen), 32, 32, 3), dtype=np.uint8)
        for k, (_, _, name, data) in enumerate(chosen):
            with Image.open(io.BytesIO(data)) as im:
                img = np.asarray(im.convert("RGB"))
            if img.shape != (32, 32, 3):
                raise DataSourceError(f"{origin}: {split}/{name} is {img.shape}, expected 32x32 RGB")
            images[k] = img
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = np.array([e[1] for e in chosen], dtype=np.int64)
    return arrays


def image_folder_entries_from_tar(path: Path) -> list[tuple[str, int, str, bytes]]:
    entries = []
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 3 or Path(member.name).suffix.lower() not in IMAGE_SUFFIXES:
                continue
            split, cls, name = parts[-3], parts[-2], parts[-1]
            if split not in ("train", "test"):
                continue
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            entries.append((split, _label_of(cls, str(path)), name, data))
    return entries


def image_folder_entries_from_folder(folder: Path) -> list[tuple[str, int, str, bytes]]:
    entries = []
    for split in ("train", "test"):
        for cls_dir in sorted(p for p in (folder / split).iterdir() if p.is_dir()):
            label = _label_of(cls_dir.name, str(folder))
            for file in sorted(cls_dir.iterdir()):
                if file.suffix.lower() in IMAGE_SUFFIXES:
                    entries.append((split, label, file.name, file.read_bytes()))
    return entries


def _folder_fingerprint(folder: Path) -> str:
    """Identity of an image folder by the bytes of its files (digests reused while size and mtime hold)."""
    return folder_content_digest(folder, "*/*/*")


def is_jpeg_copy(names: list[str]) -> bool:
    return any(Path(n).suffix.lower() in (".jpg", ".jpeg") for n in names)


def _find_image_folder_sources(roots: list[Path]) -> list[tuple[str, Path]]:
    """("folder" | "tar", path) candidates in search order."""
    found: list[tuple[str, Path]] = []
    for root in roots:
        for parent in IMAGE_FOLDER_PARENTS:
            base = root / parent if parent else root
            if (base / "train").is_dir() and (base / "test").is_dir():
                found.append(("folder", base))
            if base.is_dir() and parent:  # tarballs only inside a CIFAR-named folder, or named *cifar*
                found.extend(("tar", t) for t in sorted(base.glob("*.tar.gz")) + sorted(base.glob("*.tgz")))
        found.extend(("tar", t) for t in sorted(root.glob("*cifar*.tar.gz")))
    unique: list[tuple[str, Path]] = []
    for item in found:
        if item not in unique:
            unique.append(item)
    return unique


def _load_image_folder(kind: str, path: Path) -> RawImageSet:
    identity = sha256_file(path) if kind == "tar" else _folder_fingerprint(path)
    artifact = ArtifactDir("sources/cifar10-image-folder", {"identity": identity, "format": 1}, code=(__name__,))
    origin = f"image-folder copy {path}" + (" (tar.gz, decoded once into the cache)" if kind == "tar" else "")
    with artifact.lock():  # concurrent loaders decode it once
        return _load_or_decode(artifact, kind, path, identity, origin)


def _load_or_decode(artifact: ArtifactDir, kind: str, path: Path, identity: str, origin: str) -> RawImageSet:
    if artifact.is_complete():
        with np.load(artifact.file("cifar10.npz")) as data:
            arrays = {k: data[k] for k in data.files}
        provenance = {**artifact.meta()["provenance"], "cache": str(artifact.path)}
        return RawImageSet("cifar10", **arrays, provenance=provenance)
    entries = image_folder_entries_from_tar(path) if kind == "tar" else image_folder_entries_from_folder(path)
    arrays = decode_image_folder(entries, origin)
    _validate(arrays, origin)
    jpeg = is_jpeg_copy([e[2] for e in entries])
    provenance = {"source": origin, "sha256" if kind == "tar" else "content_sha256": identity,
                  "jpeg_copy": jpeg, "display_name": JPEG_DISPLAY_NAME if jpeg else "CIFAR-10",
                  "train_images_sha256": hashlib.sha256(arrays["train_images"].tobytes()).hexdigest()}
    if jpeg:
        provenance["note"] = ("lossy JPEG re-encoding of CIFAR-10 (about 7 grey levels mean absolute error); "
                              "results on it are labelled 'CIFAR-10 (JPEG copy)'")
    artifact.commit({"cifar10.npz": save_npz(arrays)}, provenance)
    return RawImageSet("cifar10", **arrays, provenance={**provenance, "cache": str(artifact.path)})


def _from_batch_folder(folder: Path, origin: str) -> RawImageSet:
    try:
        arrays = _read_batches(folder)
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, ValueError, TypeError) as exc:
        raise DataSourceError(f"CIFAR-10 batch files in {folder} cannot be read ({type(exc).__name__}: {exc}); "
                              "replace them with an intact copy of cifar-10-batches-py") from exc
    _validate(arrays, origin)
    provenance = {"source": origin, "jpeg_copy": False, "display_name": "CIFAR-10",
                  "train_images_sha256": hashlib.sha256(arrays["train_images"].tobytes()).hexdigest()}
    return RawImageSet("cifar10", **arrays, provenance=provenance)


def _torchvision_download(download_dir: Path, timeout_s: float = 20.0) -> Path:
    from torchvision.datasets import CIFAR10  # local import: torchvision is slow to import

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)  # fail fast when there is no network
    try:
        CIFAR10(str(download_dir), train=True, download=True)
    finally:
        socket.setdefaulttimeout(previous)
    return download_dir / BATCH_FOLDER


def load_cifar10(data_root: str | os.PathLike | None = None, allow_download: bool = True) -> RawImageSet:
    """CIFAR-10 train (50k) and test (10k) as uint8 [N, 32, 32, 3] with int64 labels (see module doc)."""
    roots = data_roots(data_root)
    for root in roots:
        for parent in BATCH_PARENTS:
            folder = (root / parent if parent else root) / BATCH_FOLDER
            if _has_batches(folder):
                return _from_batch_folder(folder, f"torchvision batches in {folder}")
    errors: list[str] = []
    for kind, path in _find_image_folder_sources(roots):
        try:
            return _load_image_folder(kind, path)
        except (DataSourceError, OSError, tarfile.TarError, EOFError, zlib.error, ValueError) as exc:
            errors.append(f"{path}: {type(exc).__name__}: {str(exc)[:300]}")

    download_dir = cache_root() / "downloads" / "torchvision"
    if _has_batches(download_dir / BATCH_FOLDER):
        return _from_batch_folder(download_dir / BATCH_FOLDER, "torchvision download (cached)")
    if allow_download and not offline():
        check_writable()  # the download goes into the cache: a read-only cache is the cause to name
        try:
            with download_lock("torchvision-cifar10"):  # concurrent jobs: one downloads
                if _has_batches(download_dir / BATCH_FOLDER):  # another job's
                    return _from_batch_folder(download_dir / BATCH_FOLDER, "torchvision download (cached)")
                folder = _torchvision_download(download_dir)
            return _from_batch_folder(folder, "torchvision download")
        except Exception as exc:  # noqa: BLE001 - a failed download just moves on to the error
            errors.append(f"torchvision download: {type(exc).__name__}: {str(exc)[:300]}")

    searched = ", ".join(str(r) for r in roots) or "(no data root configured)"
    raise DataSourceError(
        "CIFAR-10 is not available. Provide it in one of these ways:\n"
        f"  1. torchvision's batch files in <root>/{BATCH_FOLDER}/ and set $DDLIB_DATA_ROOT=<root>;\n"
        "  2. an image-folder copy <root>/cifar10-jpeg/{train,test}/<class>/*.jpg, or a .tar.gz of it in\n"
        "     <root>/cifar10-jpeg/ (class folders airplane ... truck);\n"
        "  3. allow torchvision to download it (needs internet; unset DDLIB_OFFLINE).\n"
        f"Data roots searched: {searched}.\n"
        "Attempts made:\n  " + ("\n  ".join(errors) if errors else "none (downloads disabled)")
    )
