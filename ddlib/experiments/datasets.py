"""Tables and figures that describe biased data sets (notebook 00): counts, samples, provenance."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ddlib.core.paths import portable

from ddlib.datasets.base import BiasedDataset, BiasedSplit
from ddlib.datasets.corruptions import CORRUPTION_NAMES, SEVERITIES, corrupt_images


def count_table(dataset: BiasedDataset, split: str = "train") -> pd.DataFrame:
    """Samples per class (rows) × bias attribute (columns), with each class's conflicting count and ratio."""
    part: BiasedSplit = getattr(dataset, split)
    table = part.count_table(dataset.num_classes, len(dataset.bias_names))
    frame = pd.DataFrame(table, columns=list(dataset.bias_names))
    frame.insert(0, "class", list(dataset.class_names))
    totals = table.sum(axis=1)
    conflicting = np.array([int(((part.targets == c) & ~part.aligned).sum()) for c in range(dataset.num_classes)])
    frame["total"] = totals
    frame["conflicting"] = conflicting
    frame["conflicting %"] = np.where(totals > 0, 100.0 * conflicting / np.maximum(totals, 1), np.nan)
    return frame


def ratio_summary(datasets: list[tuple[float, BiasedDataset]]) -> pd.DataFrame:
    """One row per (data set, requested ratio): split sizes, conflicting counts and realised ratios.

    ``valid`` / ``test``: the split's size and its share of bias-aligned samples (NaN when the split
    is missing or empty; the synthetic data sets' validation split is built like their test split,
    so both shares are about 10 %)."""
    rows = []
    for ratio, ds in datasets:
        row: dict[str, Any] = {"data set": ds.display_name, "requested %": 100 * ratio, "train": len(ds.train),
                               "train conflicting": ds.train.conflicting_count,
                               "realised %": 100 * ds.train.conflicting_count / len(ds.train)}
        for name in ("valid", "test"):
            part = getattr(ds, name)
            row[name] = len(part) if part is not None else 0
            row[f"{name} aligned %"] = 100 * float(part.aligned.mean()) if part is not None and len(part) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def pick_samples(split: BiasedSplit, num_classes: int, per_class: int, aligned: bool,
                 rng: np.random.Generator) -> np.ndarray:
    """``per_class`` images per class (class-major), white where a class has fewer such samples."""
    _, c, h, w = split.images.shape
    out = np.full((num_classes * per_class, c, h, w), 255, dtype=np.uint8)
    for k in range(num_classes):
        members = np.flatnonzero((split.targets == k) & (split.aligned == aligned))
        chosen = np.sort(rng.choice(members, size=min(per_class, len(members)), replace=False))
        out[k * per_class: k * per_class + len(chosen)] = split.images[chosen]
    return out


def aligned_conflicting_figure(dataset: BiasedDataset, per_class: int = 4, seed: int = 0) -> plt.Figure:
    """Bias-aligned (left) and bias-conflicting (right) training samples, one row per class."""
    from ddlib.core.plots import show_grid

    rng = np.random.default_rng(seed)
    height = 0.45 * dataset.num_classes + 1.0
    fig, axes = plt.subplots(1, 2, figsize=(2 + 1.1 * per_class * 2, height))
    for ax, aligned, title in ((axes[0], True, "bias-aligned"), (axes[1], False, "bias-conflicting")):
        show_grid(ax, pick_samples(dataset.train, dataset.num_classes, per_class, aligned, rng), nrow=per_class,
                  title=title)
    for row, name in enumerate(dataset.class_names):  # class names beside the left grid's rows
        h = dataset.image_size[0] + 1
        axes[0].text(-2, 1 + row * h + h / 2, name, ha="right", va="center", fontsize=8)
    fig.suptitle(dataset.display_name, fontsize=10)
    fig.tight_layout()
    return fig


def corruption_sheet(image_hwc: np.ndarray, seed: int = 0) -> np.ndarray:
    """uint8 [10 · 6, 3, H, W]: per corruption, the original then levels 1..5 (one image)."""
    rows = []
    for k in range(len(CORRUPTION_NAMES)):
        levels = [corrupt_images(image_hwc[None], k, s, np.random.default_rng(seed))[0] for s in SEVERITIES]
        rows.extend([image_hwc, *levels])
    return np.stack(rows).transpose(0, 3, 1, 2)


def corruption_figure(image_hwc: np.ndarray, source_name: str, seed: int = 0) -> plt.Figure:
    from ddlib.core.plots import image_grid

    sheet = corruption_sheet(image_hwc, seed)
    fig, ax = plt.subplots(figsize=(5.2, 8.6))
    ax.imshow(image_grid(sheet, nrow=1 + len(SEVERITIES)), interpolation="nearest")
    h = image_hwc.shape[0] + 1
    ax.set_xticks([1 + h / 2 + k * h for k in range(1 + len(SEVERITIES))],
                  ["original", *(f"level {s}" for s in SEVERITIES)], fontsize=8, rotation=30)
    ax.set_yticks([1 + h / 2 + k * h for k in range(len(CORRUPTION_NAMES))], list(CORRUPTION_NAMES), fontsize=8)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(f"the ten corruptions on one {source_name} image", fontsize=9)
    fig.tight_layout()
    return fig


def provenance_table(datasets: list[BiasedDataset]) -> pd.DataFrame:
    """Where every data set's raw images came from, their checksum and the construction parameters."""
    rows = []
    for ds in datasets:
        p = ds.provenance
        raw = p.get("mnist") or p.get("fashion_mnist") or p.get("cifar10") or p
        checksum = raw.get("train_images_sha256") or raw.get("sha256") or raw.get("content_sha256") or "—"
        spec = p.get("spec", {})
        params = {k: v for k, v in spec.items() if k != "name"}
        for key in ("sigma", "train_attribute_ratio", "corruption_level", "lff_folder", "image_size", "construction"):
            if key in p:
                params[key] = p[key]
        rows.append({"data set": ds.display_name, "source": raw.get("source", "—"),
                     "checksum (sha256)": str(checksum)[:16] + "…" if checksum != "—" else "—",
                     "cache key": ds.fingerprint, "construction": ", ".join(f"{k}={v}" for k, v in params.items())})
    return pd.DataFrame(portable(rows))
