"""ERM, the baseline every de-biasing method is compared with: plain cross-entropy on one network.

The same choices of network and optimiser as the de-biasing objectives, so "same model and budget"
comparisons differ only in the method. With ``model="convnet"`` and ``adam_lr=None`` it trains
exactly like :class:`~ddlib.training.objectives.CrossEntropy`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ddlib.training.debiasing.networks import Optimisation, build_network, check_model
from ddlib.training.objectives import TrainingSetup


@dataclass(frozen=True)
class ERM:
    """Cross-entropy on one network of kind ``model`` ("convnet" | "mlp"); ``adam_lr`` as in LfF."""

    model: str = "convnet"
    adam_lr: float | None = None

    def __post_init__(self) -> None:
        check_model(self.model)

    def start(self, setup: TrainingSetup, labels: torch.Tensor) -> ERMRun:
        return ERMRun(build_network(setup, self.model, "model-init"), setup, self.adam_lr)

    def cache_config(self) -> dict[str, Any]:
        return {"kind": "erm", **asdict(self)}


class ERMRun:
    def __init__(self, net: nn.Module, setup: TrainingSetup, adam_lr: float | None,
                 sample_weights: torch.Tensor | None = None):
        self.net = net
        self.opt = Optimisation(setup, net.parameters(), adam_lr)
        self.sample_weights = sample_weights
        net.train()

    def step(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        losses = F.cross_entropy(self.net(x), y, reduction="none")
        if self.sample_weights is None:
            loss = losses.mean()
        else:
            w = self.sample_weights[index.cpu()].to(losses.device)
            loss = (w * losses).sum() / w.sum()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.detach()

    def end_epoch(self) -> None:
        self.opt.end_epoch()

    def model(self) -> nn.Module:
        return self.net
