"""Learning from Failure (LfF): a deliberately biased network tells a de-biased one what to learn.

Two networks of the same architecture train side by side, each with its own optimiser, from one
summed loss:

* the *biased* network minimises GCE (:mod:`.gce`), so it learns the shortcut and fails on the
  bias-conflicting samples;
* the *de-biased* network minimises cross-entropy weighted per sample by the relative difficulty
  W = L_b / (L_b + L_d + 1e-8), where L_b and L_d are the two networks' per-sample cross-entropies,
  each smoothed over the epochs by an exponential moving average (:class:`SampleLossAverage`) and
  divided by the largest average within the sample's class. Samples the biased network gets wrong
  (large L_b) get W near 1, the ones it finds easy get W near 0.

The de-biased network is the one evaluated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ddlib.training.debiasing.gce import DEFAULT_Q, generalized_cross_entropy
from ddlib.training.debiasing.networks import Optimisation, build_network, check_model
from ddlib.training.objectives import TrainingSetup


class SampleLossAverage:
    """An exponential moving average of every training sample's loss, normalised within its class.

    ``update(index, loss)``: ``ema ← α · ema + (1 − α) · loss``, except on a sample's first visit,
    which stores the loss itself. ``normalized(index)``: the sample's average divided by the largest
    average among the training samples of its class."""

    def __init__(self, labels: torch.Tensor, num_classes: int, alpha: float = 0.7):
        if not 0 <= alpha < 1:
            raise ValueError(f"the EMA factor alpha must be in [0, 1), got {alpha}")
        self.labels = labels.long().cpu()
        self.num_classes = num_classes
        self.alpha = alpha
        self.values = torch.zeros(len(labels))
        self.visited = torch.zeros(len(labels), dtype=torch.bool)

    def update(self, index: torch.Tensor, loss: torch.Tensor) -> None:
        index = index.cpu()
        loss = loss.detach().float().cpu()
        old = self.values[index]
        keep = torch.where(self.visited[index], torch.full_like(old, self.alpha), torch.zeros_like(old))
        self.values[index] = keep * old + (1 - keep) * loss
        self.visited[index] = True

    def class_max(self) -> torch.Tensor:
        """The largest average of every class [num_classes] (0 for a class with no visited sample)."""
        out = torch.zeros(self.num_classes)
        return out.scatter_reduce(0, self.labels, self.values, reduce="amax", include_self=True)

    def normalized(self, index: torch.Tensor) -> torch.Tensor:
        index = index.cpu()
        peak = self.class_max()[self.labels[index]]
        return self.values[index] / peak.clamp_min(1e-12)


def relative_difficulty(biased: torch.Tensor, debiased: torch.Tensor) -> torch.Tensor:
    """W = L_b / (L_b + L_d + 1e-8) of the (normalised) per-sample losses of the two networks."""
    return biased / (biased + debiased + 1e-8)


@dataclass(frozen=True)
class LfF:
    """LfF as a training objective. ``model``: "convnet" | "mlp"; ``adam_lr``: None = the protocol's
    SGD, else Adam at this rate (the method's own setting: 1e-3); ``q``: GCE's exponent; ``ema``:
    the loss averages' factor α."""

    model: str = "convnet"
    adam_lr: float | None = None
    q: float = DEFAULT_Q
    ema: float = 0.7

    def __post_init__(self) -> None:
        check_model(self.model)

    def start(self, setup: TrainingSetup, labels: torch.Tensor) -> LfFRun:
        return LfFRun(self, setup, labels)

    def cache_config(self) -> dict[str, Any]:
        return {"kind": "lff", **asdict(self)}


class LfFRun:
    def __init__(self, cfg: LfF, setup: TrainingSetup, labels: torch.Tensor):
        self.cfg = cfg
        self.biased = build_network(setup, cfg.model, "lff", "biased")
        self.debiased = build_network(setup, cfg.model, "lff", "debiased")
        self.opt_b = Optimisation(setup, self.biased.parameters(), cfg.adam_lr)
        self.opt_d = Optimisation(setup, self.debiased.parameters(), cfg.adam_lr)
        n_classes = setup.dataset.num_classes
        self.ema_b = SampleLossAverage(labels, n_classes, cfg.ema)
        self.ema_d = SampleLossAverage(labels, n_classes, cfg.ema)
        self.biased.train()
        self.debiased.train()

    def weights(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                                       torch.Tensor]:
        """Logits of both networks and the relative difficulty of the batch (EMAs updated)."""
        logits_b, logits_d = self.biased(x), self.debiased(x)
        self.ema_b.update(index, F.cross_entropy(logits_b, y, reduction="none"))
        self.ema_d.update(index, F.cross_entropy(logits_d, y, reduction="none"))
        w = relative_difficulty(self.ema_b.normalized(index), self.ema_d.normalized(index)).to(x.device)
        return logits_b, logits_d, w

    def step(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        logits_b, logits_d, w = self.weights(x, y, index)
        loss = generalized_cross_entropy(logits_b, y, self.cfg.q).mean() \
            + (w * F.cross_entropy(logits_d, y, reduction="none")).mean()
        self.opt_b.zero_grad()
        self.opt_d.zero_grad()
        loss.backward()
        self.opt_b.step()
        self.opt_d.step()
        return loss.detach()

    def end_epoch(self) -> None:
        self.opt_b.end_epoch()
        self.opt_d.end_epoch()

    def model(self) -> nn.Module:
        return self.debiased
