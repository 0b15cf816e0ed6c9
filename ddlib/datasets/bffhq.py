"""BFFHQ (biased FFHQ; Kim et al. 2021, as published with DFA by Lee et al. 2021): real-world bias.

Faces from FFHQ; target = age (0 young, 1 old), bias = gender. Bias-aligned pairs are young women
and old men (target == bias with gender 0 = female, 1 = male). Only a 0.5 % bias-conflicting
training split exists. Layout under a data root (``$DDLIB_DATA_ROOT`` or ``data_root``)::

    bffhq/0.5pct/align/**/<id>_<age>_<gender>.png      training, bias-aligned
    bffhq/0.5pct/conflict/**/<id>_<age>_<gender>.png   training, bias-conflicting
    bffhq/valid/**/<id>_<age>_<gender>.png
    bffhq/test/**/<id>_<age>_<gender>.png

Labels come from the file names, never from the folder; the ``aligned`` flag is recomputed as
``age == gender`` and checked against the align/conflict folder. The test split keeps every test
image (DFA's loader keeps only the bias-conflicting ones — our "conflicting" accuracy is that
number). Images are resized to ``image_size`` (option, default 64: the published images are
128×128 and distillation with a ConvNet-3 at 64 px stays affordable; ConvNet depth 3 at 64 px gives
8×8 feature maps) with PIL's antialiased bilinear filter, decoded once and cached as uint8.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ddlib.core.cache import listed_content_digest
from ddlib.sources import DataSourceError, data_roots
from ddlib.datasets.base import BiasedDataset, BiasedSplit
from ddlib.datasets.registry import DatasetSpec, cached_splits, dataset_from_splits, register_dataset

BFFHQ_CONFLICT_RATIO = 0.005
DEFAULT_IMAGE_SIZE = 64
CLASS_NAMES = ("young", "old")
BIAS_NAMES = ("female", "male")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
HOW_TO_GET = (
    "BFFHQ is not redistributed with this project. Download it from the link in the README of the DFA code "
    "(https://github.com/kakaoenterprise/Learning-Debiased-Disentangled, 'bffhq' data) and unpack it so that "
    "<root>/bffhq/0.5pct/align/, <root>/bffhq/0.5pct/conflict/, <root>/bffhq/valid/ and <root>/bffhq/test/ "
    "hold the images named <id>_<age>_<gender>.png; then set $DDLIB_DATA_ROOT=<root> (or pass data_root=<root>)."
)


def find_bffhq_root(data_root: str | os.PathLike | None = None) -> Path:
    """The ``bffhq`` folder under the first data root that has the full layout, else DataSourceError."""
    roots = data_roots(data_root)
    for root in roots:
        for base in (root / "bffhq", root):
            if all((base / sub).is_dir() for sub in ("0.5pct/align", "0.5pct/conflict", "valid", "test")):
                return base
    searched = ", ".join(str(r) for r in roots) or "(no data root configured: $DDLIB_DATA_ROOT is unset)"
    raise DataSourceError(f"BFFHQ not found in the data roots searched: {searched}.\n{HOW_TO_GET}")


def parse_labels(path: Path) -> tuple[int, int]:
    """(age, gender) from ``<id>_<age>_<gender>.<ext>``."""
    parts = path.stem.split("_")
    try:
        age, gender = int(parts[-2]), int(parts[-1])
    except (IndexError, ValueError):
        raise DataSourceError(f"BFFHQ file name {path.name!r} does not follow <id>_<age>_<gender>.png") from None
    if age not in (0, 1) or gender not in (0, 1):
        raise DataSourceError(f"BFFHQ file {path.name!r}: age and gender must be 0 or 1")
    return age, gender


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def listing_fingerprint(files: list[Path], base: Path) -> str:
    """Identity of the raw data by relative paths and bytes (per-file digests are kept in the cache
    and reused while size and mtime are unchanged), so a replaced image is never served from the cache."""
    return listed_content_digest(files, base)


def read_split(files: list[Path], image_size: int, expect_aligned: bool | None = None) -> BiasedSplit:
    from PIL import Image

    if not files:
        raise DataSourceError("a BFFHQ split folder holds no images")
    images = np.empty((len(files), 3, image_size, image_size), dtype=np.uint8)
    targets = np.empty(len(files), dtype=np.int64)
    bias = np.empty(len(files), dtype=np.int64)
    for k, path in enumerate(files):
        targets[k], bias[k] = parse_labels(path)
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.size != (image_size, image_size):
                im = im.resize((image_size, image_size), Image.BILINEAR)
            images[k] = np.asarray(im).transpose(2, 0, 1)
    aligned = targets == bias
    if expect_aligned is not None and not np.all(aligned == expect_aligned):
        bad = files[int(np.flatnonzero(aligned != expect_aligned)[0])]
        raise DataSourceError(f"BFFHQ file {bad} sits in the {'align' if expect_aligned else 'conflict'} folder "
                              "but its labels say otherwise")
    return BiasedSplit(images, targets, bias, aligned)


def concat(a: BiasedSplit, b: BiasedSplit) -> BiasedSplit:
    return BiasedSplit(*(np.concatenate([getattr(a, f), getattr(b, f)]) for f in ("images", "targets", "bias",
                                                                                   "aligned")))


@register_dataset("bffhq", options=("image_size",), fixed_conflict_ratio=BFFHQ_CONFLICT_RATIO,
                  unbiased_variant=False, probe=find_bffhq_root)
def build_bffhq(spec: DatasetSpec, data_root: str | os.PathLike | None = None) -> BiasedDataset:
    if abs(spec.conflict_ratio - BFFHQ_CONFLICT_RATIO) > 1e-12 or spec.unbiased:
        raise ValueError("BFFHQ exists only as its published 0.5 % bias-conflicting split: "
                         "call load_dataset('bffhq', 0.005) (no unbiased variant)")
    image_size = int(spec.option("image_size", DEFAULT_IMAGE_SIZE))
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8 pixels, got {image_size}")
    base = find_bffhq_root(data_root)
    folders = {"align": base / "0.5pct" / "align", "conflict": base / "0.5pct" / "conflict",
               "valid": base / "valid", "test": base / "test"}
    files = {k: list_images(v) for k, v in folders.items()}
    source_id = listing_fingerprint([f for fs in files.values() for f in fs], base)

    def build():
        train = concat(read_split(files["align"], image_size, True), read_split(files["conflict"], image_size, False))
        splits = {"train": train, "valid": read_split(files["valid"], image_size),
                  "test": read_split(files["test"], image_size)}
        return splits, {"source": f"BFFHQ image folders in {base}", "content_sha256": source_id,
                        "image_size": image_size, "counts": {k: len(v) for k, v in files.items()}}

    splits, provenance = cached_splits(spec, source_id, build)
    return dataset_from_splits(spec, splits, provenance, "BFFHQ", detail=f"{image_size} px", class_names=CLASS_NAMES,
                               bias_names=BIAS_NAMES)
