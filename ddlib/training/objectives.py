"""Training objectives: how a fresh network learns from a set of images.

The evaluation protocol (:mod:`ddlib.training.evaluation`) and the training loop
(:mod:`ddlib.training.loop`) own everything an objective shares — epochs, shuffling, per-sample
augmentation, the test — and hand each mini-batch to an objective. An objective is two small pieces:

* a :class:`TrainingObjective`: a frozen, hashable description (part of every cache key) whose
  :meth:`~TrainingObjective.start` builds the networks, optimisers and per-sample state of one
  training run from a :class:`TrainingSetup`;
* the :class:`ObjectiveRun` it returns: ``step(x, y, index)`` takes one optimisation step on a
  batch (``index`` = the batch's positions in the training set, for per-sample state such as
  LfF's loss averages), ``end_epoch()`` advances schedules, ``model()`` is the network that is
  evaluated.

Plain cross-entropy (:class:`CrossEntropy`) is the default and reproduces the DD evaluation
protocol exactly. Methods with several networks and per-sample state (LfF's biased and de-biased
pair, DFA, SelecMix, JTT) implement the same two pieces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from ddlib.core.validation import AT_LEAST_ONE, MOMENTUM, NON_NEGATIVE, POSITIVE, check_config
from ddlib.core.cache import tensor_digest
from ddlib.core.seeding import torch_generator
from ddlib.datasets import BiasedDataset
from ddlib.models import ConvNetConfig, build_convnet


@dataclass(frozen=True)
class TrainConfig:
    """How a fresh network is trained (defaults: the DD evaluation protocol: SGD lr 0.01, momentum
    0.9, weight decay 5e-4, batch 256, 1,000 epochs, lr × 0.1 once at half, DSA per sample)."""

    epochs: int = 1000
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 256
    dsa: bool = True
    model: ConvNetConfig = ConvNetConfig()

    def __post_init__(self) -> None:
        check_config(self, epochs=NON_NEGATIVE, lr=POSITIVE, momentum=MOMENTUM, weight_decay=NON_NEGATIVE,
                     batch_size=AT_LEAST_ONE)


@dataclass(frozen=True)
class TrainingSetup:
    """What an objective may build a run from: the data set's shapes, the settings, one seed."""

    dataset: BiasedDataset
    config: TrainConfig
    n_samples: int  # size of the training set the run sees (per-sample state has this length)
    seed: int
    device: torch.device

    def generator(self, *labels: object) -> torch.Generator:
        """An independent random stream of this run, e.g. ``setup.generator("model-init")``."""
        return torch_generator(self.seed, *labels)

    def build_convnet(self, *labels: object, config: ConvNetConfig | None = None) -> nn.Module:
        """A freshly initialised ConvNet of the data set's shape, initialised from stream ``labels``."""
        ds = self.dataset
        return build_convnet(ds.channels, ds.num_classes, ds.image_size, config or self.config.model,
                             self.generator(*labels), self.device)

    def sgd(self, params: Any) -> torch.optim.Optimizer:
        c = self.config
        return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)

    def halving_schedule(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        """The protocol's schedule: learning rate × 0.1 once, at half of the epochs."""
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[max(1, self.config.epochs // 2)],
                                                    gamma=0.1)


@runtime_checkable
class ObjectiveRun(Protocol):
    """One training run of an objective: its networks, optimisers and per-sample state."""

    def step(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """One optimisation step on an (augmented) batch; returns the detached loss."""

    def end_epoch(self) -> None:
        """Called after every epoch (learning-rate schedules)."""

    def model(self) -> nn.Module:
        """The network that is evaluated."""


@runtime_checkable
class TrainingObjective(Protocol):
    """A frozen description of how to train; :meth:`start` builds one run."""

    def start(self, setup: TrainingSetup, labels: torch.Tensor) -> ObjectiveRun:
        """Networks, optimisers and state for one run on a training set with these ``labels``."""

    def cache_config(self) -> dict[str, Any]:
        """What determines the trained networks (part of cache keys)."""


class SupervisedRun:
    """One network, one optimiser, a per-batch loss: cross-entropy, optionally weighted per sample.

    ``sample_weights`` (one per training sample) weight the per-sample loss, normalised by the
    batch's weight sum."""

    def __init__(self, net: nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
                 sample_weights: torch.Tensor | None = None):
        self.net, self.optimizer, self.scheduler = net, optimizer, scheduler
        self.sample_weights = sample_weights
        net.train()

    def loss(self, logits: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        if self.sample_weights is None:
            return F.cross_entropy(logits, y)
        w = self.sample_weights[index].to(logits.device)
        return (F.cross_entropy(logits, y, reduction="none") * w).sum() / w.sum()

    def step(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        loss = self.loss(self.net(x), y, index)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def end_epoch(self) -> None:
        if self.scheduler is not None:
            self.scheduler.step()

    def model(self) -> nn.Module:
        return self.net


@dataclass(frozen=True)
class CrossEntropy:
    """Plain cross-entropy (ERM): the DD evaluation protocol's objective and the default."""

    def start(self, setup: TrainingSetup, labels: torch.Tensor) -> SupervisedRun:
        net = setup.build_convnet("model-init")
        optimizer = setup.sgd(net.parameters())
        return SupervisedRun(net, optimizer, setup.halving_schedule(optimizer))

    def cache_config(self) -> dict[str, Any]:
        return {"kind": "cross-entropy"}


class WeightedCrossEntropy:
    """Cross-entropy with a fixed non-negative weight per training sample (``name`` labels it)."""

    def __init__(self, sample_weights: torch.Tensor, name: str = "weights"):
        sample_weights = torch.as_tensor(sample_weights, dtype=torch.float32)
        if sample_weights.dim() != 1 or not torch.isfinite(sample_weights).all() or (sample_weights < 0).any():
            raise ValueError("sample_weights must be a finite, non-negative vector with one entry per training sample")
        if not (sample_weights > 0).any():
            raise ValueError("sample_weights are all zero: at least one training sample needs a positive weight")
        self.sample_weights = sample_weights
        self.name = name

    def start(self, setup: TrainingSetup, labels: torch.Tensor) -> SupervisedRun:
        if len(self.sample_weights) != setup.n_samples:
            raise ValueError(f"{len(self.sample_weights)} sample weights for {setup.n_samples} training samples")
        net = setup.build_convnet("model-init")
        optimizer = setup.sgd(net.parameters())
        return SupervisedRun(net, optimizer, setup.halving_schedule(optimizer), self.sample_weights)

    def cache_config(self) -> dict[str, Any]:
        return {"kind": "weighted-cross-entropy", "name": self.name, "sha256": tensor_digest(self.sample_weights)}


def objective_config(objective: TrainingObjective | None) -> dict[str, Any]:
    return CrossEntropy().cache_config() if objective is None else objective.cache_config()
