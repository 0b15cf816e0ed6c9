"""Just Train Twice (JTT): up-weight what a briefly trained ERM model gets wrong.

Phase 1 trains an identification network with plain cross-entropy for ``identification_epochs``
epochs; during its last epoch each training sample's prediction (evaluation mode, before that
batch's update) is recorded, and the misclassified samples form the *error set*. Phase 2 trains a
fresh network on the whole training set with the error set's losses weighted ``1 + upweight`` times
(the expected effect of repeating those samples ``upweight`` more times, which the original does).
The epochs of the two phases share the protocol's budget: phase 2 gets the remaining epochs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ddlib.training.debiasing.erm import ERMRun
from ddlib.training.debiasing.networks import build_network, check_model
from ddlib.training.objectives import TrainingSetup


def misclassified(logits: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The training-set positions ``index`` whose prediction ``logits.argmax(1)`` differs from ``y``."""
    return index[(logits.argmax(1) != y).cpu()]


@dataclass(frozen=True)
class JTT:
    """JTT as a training objective. ``identification_epochs`` (T) of ERM, then ``upweight`` (λ_up)."""

    model: str = "convnet"
    adam_lr: float | None = None
    identification_epochs: int = 1
    upweight: float = 20.0

    def __post_init__(self) -> None:
        check_model(self.model)
        if self.identification_epochs < 1 or self.upweight < 0:
            raise ValueError("JTT needs identification_epochs >= 1 and upweight >= 0")

    def start(self, setup: TrainingSetup, labels: torch.Tensor) -> JTTRun:
        if self.identification_epochs >= setup.config.epochs:
            raise ValueError(f"JTT's identification_epochs ({self.identification_epochs}) must be fewer than the "
                             f"training epochs ({setup.config.epochs}); lower it or train longer")
        return JTTRun(self, setup)

    def cache_config(self) -> dict[str, Any]:
        return {"kind": "jtt", **asdict(self)}


class JTTRun:
    def __init__(self, cfg: JTT, setup: TrainingSetup):
        self.cfg, self.setup = cfg, setup
        self.phase1 = ERMRun(build_network(setup, cfg.model, "jtt", "identification"), setup, cfg.adam_lr)
        self.final: ERMRun | None = None
        self.epoch = 0
        self.wrong = torch.zeros(setup.n_samples, dtype=torch.bool)
        self.error_set: torch.Tensor | None = None

    def step(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        if self.final is not None:
            return self.final.step(x, y, index)
        if self.epoch == self.cfg.identification_epochs - 1:
            net = self.phase1.net
            net.eval()
            with torch.no_grad():
                self.wrong[misclassified(net(x), y, index.cpu())] = True
            net.train()
        return self.phase1.step(x, y, index)

    def end_epoch(self) -> None:
        self.epoch += 1
        if self.final is None:
            self.phase1.end_epoch()
            if self.epoch == self.cfg.identification_epochs:
                self.error_set = torch.nonzero(self.wrong).flatten()
                weights = 1.0 + self.cfg.upweight * self.wrong.float()
                net = build_network(self.setup, self.cfg.model, "jtt", "final")
                self.final = ERMRun(net, self.setup, self.cfg.adam_lr, weights)
        else:
            self.final.end_epoch()

    def model(self) -> nn.Module:
        return self.final.net if self.final is not None else self.phase1.net
