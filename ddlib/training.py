"""Training a fresh classifier on a set of images (synthetic or real), the evaluation protocol's core.

SGD with momentum and weight decay, learning rate × 0.1 once at half of the epochs, DSA drawn per
sample on every batch (one family per batch), shuffling from an explicit generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .augment import DSA
from .datasets import BiasedDataset
from .models import ConvNetConfig, build_convnet
from .progress import progress
from .seeding import torch_generator


@dataclass(frozen=True)
class TrainConfig:
    """How a fresh network is trained (defaults: the DD evaluation protocol of ``recipes.md``)."""

    epochs: int = 1000
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    dsa: bool = True
    model: ConvNetConfig = ConvNetConfig()


def _as_float(dataset: BiasedDataset, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 images are normalised with the data set's statistics; float images pass through."""
    if images.dtype == torch.uint8:
        return dataset.normalize(images, device)
    return images.to(device)


def train_classifier(dataset: BiasedDataset, images: torch.Tensor, labels: torch.Tensor, config: TrainConfig,
                     seed: int, device: torch.device, show_progress: bool = False, desc: str = "train",
                     sample_weights: torch.Tensor | None = None) -> nn.Module:
    """Train a freshly initialised ConvNet on ``images`` (uint8 or normalised float) and ``labels``.

    ``sample_weights`` (optional, one per image) weight the per-sample cross-entropy.
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    model = build_convnet(dataset.channels, dataset.num_classes, dataset.image_size, config.model,
                          torch_generator(seed, "model-init"), device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[max(1, config.epochs // 2)], gamma=0.1)
    shuffle_gen = torch_generator(seed, "shuffle")
    aug_gen = torch_generator(seed, "dsa")
    dsa = DSA(dataset.dsa_strategy) if config.dsa else None
    labels = labels.long()
    model.train()
    for _ in progress(range(config.epochs), desc=desc, disable=not show_progress, leave=False):
        order = torch.randperm(len(images), generator=shuffle_gen)
        train_one_epoch(model, optimizer, dataset, images, labels, order, config.batch_size, device, dsa, aug_gen,
                        sample_weights)
        scheduler.step()
    return model.eval()


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, dataset: BiasedDataset,
                    images: torch.Tensor, labels: torch.Tensor, order: torch.Tensor, batch_size: int,
                    device: torch.device, dsa: DSA | None, aug_gen: torch.Generator,
                    sample_weights: torch.Tensor | None = None) -> None:
    """One pass over ``images[order]`` in mini-batches: per-sample DSA, (weighted) cross-entropy, SGD step.

    ``sample_weights`` (one per image) weight the per-sample loss, normalised by the batch's weight sum."""
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        x = _as_float(dataset, images[batch], device)
        y = labels[batch].to(device)
        if dsa is not None:
            x = dsa(x, aug_gen)
        if sample_weights is None:
            loss = F.cross_entropy(model(x), y)
        else:
            w = sample_weights[batch].to(device)
            loss = (F.cross_entropy(model(x), y, reduction="none") * w).sum() / w.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


@torch.no_grad()
def predict(model: nn.Module, dataset: BiasedDataset, images: torch.Tensor, device: torch.device,
            batch_size: int = 256) -> torch.Tensor:
    preds = []
    for start in range(0, len(images), batch_size):
        preds.append(model(_as_float(dataset, images[start:start + batch_size], device)).argmax(1).cpu())
    return torch.cat(preds)
