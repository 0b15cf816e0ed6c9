"""The surrogate encoder whose embedding the KDE weights are computed in.

Trained on the *biased* training set, by default with the supervised contrastive loss (two augmented
views per image, projection head ``Linear(d, d) → ReLU → Linear(d, 128)``), alternatively with plain
cross-entropy (ERM). Three parameters decide whether the embedding still *shows* the bias, which is
what the KDE needs:

* ``augment`` — ``"dsa"`` (the data set's DSA strategy, colour jitter included), ``"geometric"`` (the same
  without the colour family) or ``"none"``. A colour-changing augmentation can make a colour-biased
  embedding colour-blind.
* ``epochs`` — training length: fractions of an epoch are allowed (``ceil(epochs × samples / batch)``
  steps) and ``0`` means *no training* — the randomly initialised ConvNet (with its random head for
  SupCon), the untrained baseline of notebook 03. A briefly trained surrogate still separates the
  colours and isolates the conflicting samples; a long-trained one may learn the digits and blend
  them in (notebook 03 tests this).
* ``embedding`` — which layer: ``"projection"`` (the normalised SupCon head output) or ``"encoder"``
  (the normalised ConvNet features).

The trained weights and the L2-normalised embeddings of the whole training set are cached together
under the configuration, so every distillation run (DM, DC/DSA, MTT) reuses them.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ddlib.core.validation import AT_LEAST_ONE, MOMENTUM, NON_NEGATIVE, POSITIVE, check_config
from ddlib.core.progress import bar_label, progress as progress_bar
from ddlib.augment import DSA
from ddlib.core.cache import ArtifactDir, save_torch
from ddlib.core.device import numerics_identity
from ddlib.datasets import BiasedDataset
from ddlib.kde_supcon.supcon import supcon_loss
from ddlib.models import ConvNetConfig, build_convnet
from ddlib.models.convnet import NUMERICS, ConvNet, init_parameters
from ddlib.core.seeding import torch_generator

OBJECTIVES = ("supcon", "erm")
AUGMENTS = ("dsa", "geometric", "none")
EMBEDDINGS = ("projection", "encoder")


@dataclass(frozen=True)
class SurrogateConfig:
    objective: str = "supcon"
    augment: str = "dsa"
    epochs: float = 1.0
    max_samples: int | None = 20_000  # a class-stratified subset of the training set (None: all of it)
    batch_size: int = 256
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    temperature: float = 0.1  # SupCon
    projection_dim: int = 128
    embedding: str = "projection"
    model: ConvNetConfig = ConvNetConfig(width=64)
    seed: int = 0

    def __post_init__(self) -> None:
        check_config(self, epochs=NON_NEGATIVE, max_samples=AT_LEAST_ONE, batch_size=AT_LEAST_ONE, lr=POSITIVE,
                     momentum=MOMENTUM, weight_decay=NON_NEGATIVE, temperature=POSITIVE,
                     projection_dim=AT_LEAST_ONE, seed=NON_NEGATIVE)
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown surrogate objective {self.objective!r}; choose one of {OBJECTIVES}")
        if self.augment not in AUGMENTS:
            raise ValueError(f"unknown surrogate augmentation {self.augment!r}; choose one of {AUGMENTS}")
        if self.embedding not in EMBEDDINGS:
            raise ValueError(f"unknown surrogate embedding {self.embedding!r}; choose one of {EMBEDDINGS}")
        if self.embedding == "projection" and self.objective != "supcon":
            raise ValueError("only a SupCon surrogate has a projection head; use embedding='encoder' with ERM")


def projection_head(dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, out_dim))


@dataclass
class Surrogate:
    """A trained surrogate and the L2-normalised embedding of every training sample (``[N, d]``)."""

    config: SurrogateConfig
    encoder: ConvNet
    head: nn.Module | None
    embeddings: torch.Tensor
    provenance: dict[str, Any] = field(default_factory=dict)
    loaded_from_cache: bool = False

    @property
    def key(self) -> str:
        return str(self.provenance.get("cache_key", ""))

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """L2-normalised embedding of normalised images ``x`` (the configured layer)."""
        return _embed(self.encoder, self.head, x, self.config.embedding)


def augmentation_strategy(dataset: BiasedDataset, augment: str) -> str | None:
    """The DSA strategy string for the surrogate's views (``None`` for no augmentation)."""
    if augment == "none":
        return None
    families = dataset.dsa_strategy.split("_")
    if augment == "geometric":
        families = [f for f in families if f != "color"]
    return "_".join(families)


def training_subset(n: int, max_samples: int | None) -> np.ndarray:
    """Every k-th sample in data set order: keeps the class and bias proportions (as evaluate_full_data)."""
    if max_samples is None or max_samples >= n:
        return np.arange(n)
    return np.linspace(0, n - 1, max_samples).round().astype(np.int64)


def _embed(encoder: ConvNet, head: nn.Module | None, x: torch.Tensor, layer: str) -> torch.Tensor:
    features = encoder.embed(x)
    if layer == "projection":
        features = head(features)
    return F.normalize(features, dim=1)


def _artifact(dataset: BiasedDataset, config: SurrogateConfig, device: torch.device | str) -> ArtifactDir:
    return ArtifactDir("surrogates", {"dataset": dataset.fingerprint, "config": config, "numerics": NUMERICS,
                                      **numerics_identity(device), "format": 1}, code=(__name__,))


def _build(dataset: BiasedDataset, config: SurrogateConfig, device: torch.device) -> tuple[ConvNet, nn.Module | None]:
    encoder = build_convnet(dataset.channels, dataset.num_classes, dataset.image_size, config.model,
                            torch_generator(config.seed, "surrogate", "init"), device)
    head = None
    if config.objective == "supcon":
        head = init_parameters(projection_head(encoder.feature_dim, config.projection_dim),
                               torch_generator(config.seed, "surrogate", "head")).to(device)
    return encoder, head


# Images per forward pass when embedding the training set. 128 embeds Colored MNIST's 60,000 images in
# 8 s on 2 CPU cores against 16 s at 1,024 (smaller batches stay in the CPU caches), bit-identical
# (the same batch size as :data:`ddlib.training.loop.PREDICT_BATCH`).
EMBED_BATCH = 128


def train_surrogate(dataset: BiasedDataset, config: SurrogateConfig, device: torch.device | str = "cpu",
                    progress: bool = True, use_cache: bool = True, embed_batch: int = EMBED_BATCH) -> Surrogate:
    """Train (or load from the cache) the surrogate and embed the whole training set with it.

    Under the artifact's lock: of several processes asking at once, one trains, the others load."""
    artifact = _artifact(dataset, config, device)
    with artifact.lock() if use_cache else contextlib.nullcontext():
        return _train_or_load(dataset, config, torch.device(device), progress, use_cache, embed_batch, artifact)


def _train_or_load(dataset: BiasedDataset, config: SurrogateConfig, device: torch.device, progress: bool,
                   use_cache: bool, embed_batch: int, artifact: ArtifactDir) -> Surrogate:
    encoder, head = _build(dataset, config, device)
    if use_cache and artifact.is_complete():
        state = torch.load(artifact.file("surrogate.pt"), map_location=device)
        encoder.load_state_dict(state["encoder"])
        if head is not None:
            head.load_state_dict(state["head"])
        embeddings = torch.load(artifact.file("embeddings.pt"))["embeddings"].float()
        provenance = {**artifact.meta()["provenance"], "cache_key": artifact.key}
        return Surrogate(config, encoder.eval(), head.eval() if head is not None else None, embeddings,
                         provenance, loaded_from_cache=True)

    subset = torch.from_numpy(training_subset(len(dataset.train), config.max_samples))
    images = torch.from_numpy(dataset.train.images)
    targets = torch.from_numpy(dataset.train.targets)
    strategy = augmentation_strategy(dataset, config.augment)
    dsa = DSA(strategy) if strategy else None
    params = list(encoder.parameters()) + (list(head.parameters()) if head is not None else [])
    optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    # a fraction of an epoch is ceil(fraction × samples / batch) steps; 0 epochs: no step (untrained)
    steps = 0 if config.epochs == 0 else max(1, math.ceil(config.epochs * len(subset) / config.batch_size))
    shuffle_gen = torch_generator(config.seed, "surrogate", "shuffle")
    aug_gen = torch_generator(config.seed, "surrogate", "augment")

    def view(x: torch.Tensor) -> torch.Tensor:
        return dsa(x, aug_gen) if dsa is not None else x

    encoder.train()
    losses: list[float] = []
    order = torch.empty(0, dtype=torch.long)
    t0 = time.perf_counter()
    for _ in progress_bar(range(steps), desc=bar_label(dataset, f"surrogate {config.objective}/{config.augment} "
                                                             f"seed={config.seed}"), disable=not progress):
        if len(order) < config.batch_size:  # start a new pass (the remainder of the last one is dropped)
            order = subset[torch.randperm(len(subset), generator=shuffle_gen)]
        batch, order = order[:config.batch_size], order[config.batch_size:]
        x = dataset.normalize(images[batch], device)
        y = targets[batch].to(device)
        if config.objective == "supcon":
            pair = torch.cat([view(x), view(x)])  # two independently augmented views, one forward pass
            z = head(encoder.embed(pair))
            loss = supcon_loss(torch.stack(z.chunk(2), dim=1), y, config.temperature)
        else:
            loss = F.cross_entropy(encoder(view(x)), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    train_seconds = time.perf_counter() - t0

    encoder.eval()
    if head is not None:
        head.eval()
    t0 = time.perf_counter()
    with torch.no_grad():
        chunks = [_embed(encoder, head, dataset.normalize(images[s:s + embed_batch], device), config.embedding).cpu()
                  for s in range(0, len(images), embed_batch)]
    embeddings = torch.cat(chunks)
    embed_seconds = time.perf_counter() - t0
    provenance = {"dataset": dataset.display_name, "config": config, "steps": steps, "train_samples": len(subset),
                  "loss_every_step": losses, "train_seconds": train_seconds, "embed_seconds": embed_seconds,
                  "device": str(device)}
    if use_cache:
        state = {"encoder": encoder.state_dict(), "head": head.state_dict() if head is not None else None}
        artifact.commit({"surrogate.pt": save_torch(state), "embeddings.pt": save_torch({"embeddings": embeddings})},
                        provenance)
    return Surrogate(config, encoder, head, embeddings, {**provenance, "cache_key": artifact.key})
