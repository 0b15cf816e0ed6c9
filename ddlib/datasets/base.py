"""The interface every biased data set implements.

A :class:`BiasedDataset` holds uint8 images with, for every sample, a target label, a bias
attribute and an ``aligned`` flag (bias attribute == the one spuriously tied to the target),
plus normalisation statistics and provenance. Distillation methods and the evaluation protocol
only see this interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class BiasedSplit:
    """One split: ``images`` uint8 [N, C, H, W], ``targets``/``bias`` int64 [N], ``aligned`` bool [N]."""

    images: np.ndarray
    targets: np.ndarray
    bias: np.ndarray
    aligned: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {self.images.dtype} {self.images.shape}")
        for name in ("targets", "bias", "aligned"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {n} images")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def conflicting_count(self) -> int:
        return int((~self.aligned).sum())

    def subset(self, index: np.ndarray) -> BiasedSplit:
        return BiasedSplit(self.images[index], self.targets[index], self.bias[index], self.aligned[index])

    def class_indices(self, num_classes: int) -> list[np.ndarray]:
        return [np.flatnonzero(self.targets == c) for c in range(num_classes)]

    def count_table(self, num_classes: int, num_bias: int) -> np.ndarray:
        """Counts per (target class, bias attribute)."""
        table = np.zeros((num_classes, num_bias), dtype=np.int64)
        np.add.at(table, (self.targets, self.bias), 1)
        return table


@dataclass(frozen=True)
class BiasedDataset:
    """A biased data set: splits, label names, normalisation statistics and provenance."""

    name: str
    display_name: str
    train: BiasedSplit
    test: BiasedSplit
    class_names: tuple[str, ...]
    bias_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    valid: BiasedSplit | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    # DSA strategy: the reference implementations' one for every data set, flips included even for
    # digits (a flipped digit is another glyph, but dropping the flip scores the same synthetic set
    # 2-3 points higher than the reference evaluation does: ddlib.tools.eval_protocol_check).
    dsa_strategy: str = "color_crop_cutout_flip_scale_rotate"
    # Hash of everything that determines the bytes (spec + raw source): part of every cache key
    # of artifacts computed from this data set.
    fingerprint: str = ""
    # The data set's name without its training variant, e.g. "Corrupted CIFAR-10 (JPEG copy)":
    # what tables and figures that cover both variants are labelled with.
    title: str = ""
    # An optional input transform in place of the mean/std normalisation (ZCA whitening,
    # :func:`ddlib.datasets.zca.with_zca`): an object with ``forward(x)`` and ``inverse(y)`` on float
    # images in [0, 1] units. None (the default): the statistics above normalise, as always.
    whitening: Any = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return int(self.train.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train.images.shape[2]), int(self.train.images.shape[3])

    def normalize(self, images: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
        """uint8 images → float tensor normalised with the data set's statistics (or whitened)."""
        x = torch.as_tensor(images).to(device=device, dtype=torch.float32).div_(255.0)
        if self.whitening is not None:
            return self.whitening.forward(x)
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised (or whitened) float images → [0, 1] for display."""
        if self.whitening is not None:
            return self.whitening.inverse(x).clamp(0, 1)
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x * std + mean).clamp(0, 1)


def channel_stats(images: np.ndarray, max_samples: int = 10_000) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units of uint8 [N, C, H, W] images (on a fixed subset)."""
    sample = images[:: max(1, len(images) // max_samples)].astype(np.float64) / 255.0
    mean = sample.mean(axis=(0, 2, 3))
    std = sample.std(axis=(0, 2, 3))
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
