"""The synthetic set every distillation method returns, and helpers they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ddlib.datasets import BiasedDataset


@dataclass(frozen=True)
class SyntheticSet:
    """``images`` are normalised float [C·ipc, ch, H, W] (class-major), ``labels`` int64 [C·ipc]."""

    images: torch.Tensor
    labels: torch.Tensor
    ipc: int
    method: str
    provenance: dict[str, Any] = field(default_factory=dict)

    def class_images(self, c: int) -> torch.Tensor:
        return self.images[self.labels == c]


def check_ipc(dataset: BiasedDataset, ipc: int) -> None:
    """Raise unless ``ipc`` is a whole number of images per class that every class can supply."""
    if isinstance(ipc, bool) or not isinstance(ipc, (int, np.integer)):
        raise TypeError(f"IPC (images per class) must be a whole number such as 1, 10 or 50, got {ipc!r}")
    smallest = min(len(ix) for ix in dataset.train.class_indices(dataset.num_classes))
    if ipc < 1 or ipc > smallest:
        raise ValueError(f"IPC must be between 1 and the smallest class size ({smallest}) of "
                         f"{dataset.display_name}, got {ipc}")


def class_index_tensors(dataset: BiasedDataset) -> list[torch.Tensor]:
    return [torch.from_numpy(ix) for ix in dataset.train.class_indices(dataset.num_classes)]


def init_from_real(dataset: BiasedDataset, ipc: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Synthetic images initialised from random real images of their class.

    Returns normalised images [C·ipc, ...], labels, and the chosen training indices."""
    check_ipc(dataset, ipc)
    chosen = []
    for members in class_index_tensors(dataset):
        chosen.append(members[torch.randperm(len(members), generator=generator)[:ipc]])
    index = torch.cat(chosen)
    images = dataset.normalize(dataset.train.images[index.numpy()])
    labels = torch.arange(dataset.num_classes).repeat_interleave(ipc)
    return images, labels, index


def sample_class_batches(members: list[torch.Tensor], batch: int, generator: torch.Generator) -> torch.Tensor:
    """``batch`` indices per class, without replacement within a class → ``[C, batch]``.

    When a class has fewer samples than ``batch``, every class uses the smallest class size so the
    batch stays rectangular (all classes go through the network in one pass)."""
    b = min(batch, min(len(m) for m in members))
    return torch.stack([m[torch.randperm(len(m), generator=generator)[:b]] for m in members])


def conflicting_share(dataset: BiasedDataset, index: torch.Tensor) -> float:
    return float((~dataset.train.aligned[np.asarray(index)]).mean())
