"""SelecMix: mixup of *contradicting* pairs chosen by a deliberately biased auxiliary network.

An auxiliary network trained with GCE (:mod:`.gce`) learns the shortcut; its normalised features
say which samples *look alike to a biased eye*. At every step one coin flip decides, for the whole
batch, which contradicting partner each sample gets:

* the **same-label** sample the auxiliary network finds **least** similar (same class, other bias), or
* the **other-label** sample it finds **most** similar (same bias, other class).

The pair is mixed as x = λ·x_i + (1 − λ)·x_partner with λ ~ U(0, ``mix_max``) (Beta(1, 1) scaled),
so the partner dominates, and labelled with the partner's label. The main network's loss is
b · W · CE(x) + a · CE(mixed), with W LfF's relative difficulty (:mod:`.lff`); a = 1, b = 0 is
SelecMix on plain training, a = 0.1, b = 1 SelecMix on top of LfF.

Simplification (said so in the notebook): the auxiliary network is a GCE-trained classifier whose
normalised penultimate features give the similarities, rather than a GCE-weighted contrastive
encoder; pairs are chosen within the training loop's batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ddlib.training.debiasing.gce import DEFAULT_Q, generalized_cross_entropy
from ddlib.training.debiasing.lff import SampleLossAverage, relative_difficulty
from ddlib.training.debiasing.networks import Optimisation, build_network, check_model
from ddlib.training.objectives import TrainingSetup

SAME_LABEL, OTHER_LABEL = "same-label-least-similar", "other-label-most-similar"


def select_partners(similarity: torch.Tensor, y: torch.Tensor, mode: str) -> torch.Tensor:
    """For every sample i of the batch, the index of its contradicting partner.

    ``similarity`` [B, B] (auxiliary features' cosine similarity); ``mode`` SAME_LABEL picks, among the
    other samples with label y_i, the least similar one; OTHER_LABEL, among the samples with another
    label, the most similar one. A sample without any candidate is its own partner."""
    if mode not in (SAME_LABEL, OTHER_LABEL):
        raise ValueError(f"unknown pairing mode {mode!r}; choose {SAME_LABEL!r} or {OTHER_LABEL!r}")
    n = len(y)
    same = y.view(-1, 1) == y.view(1, -1)
    eye = torch.eye(n, dtype=torch.bool, device=y.device)
    if mode == SAME_LABEL:
        allowed = same & ~eye
        scores = similarity.masked_fill(~allowed, float("inf"))
        partner = scores.argmin(1)
    else:
        allowed = ~same
        scores = similarity.masked_fill(~allowed, float("-inf"))
        partner = scores.argmax(1)
    return torch.where(allowed.any(1), partner, torch.arange(n, device=y.device))


@dataclass(frozen=True)
class SelecMix:
    """SelecMix as a training objective. ``model``: "convnet" | "mlp"; ``adam_lr``: None = the protocol's
    SGD, else Adam (Colored MNIST setting: 0.005); ``aux_adam_lr``: the auxiliary network's Adam rate
    (None: ``adam_lr``); ``a``, ``b``: weights of the mixed and of the LfF-weighted loss."""

    model: str = "convnet"
    adam_lr: float | None = None
    aux_adam_lr: float | None = None
    a: float = 1.0
    b: float = 0.0
    mix_max: float = 0.5
    q: float = DEFAULT_Q
    ema: float = 0.7

    def __post_init__(self) -> None:
        check_model(self.model)
        if not 0 < self.mix_max <= 1:
            raise ValueError(f"mix_max must be in (0, 1], got {self.mix_max}")

    def start(self, setup: TrainingSetup, labels: torch.Tensor) -> SelecMixRun:
        return SelecMixRun(self, setup, labels)

    def cache_config(self) -> dict[str, Any]:
        return {"kind": "selecmix", **asdict(self)}


class SelecMixRun:
    def __init__(self, cfg: SelecMix, setup: TrainingSetup, labels: torch.Tensor):
        self.cfg = cfg
        self.main = build_network(setup, cfg.model, "selecmix", "main")
        self.aux = build_network(setup, cfg.model, "selecmix", "auxiliary")
        self.opt_main = Optimisation(setup, self.main.parameters(), cfg.adam_lr)
        self.opt_aux = Optimisation(setup, self.aux.parameters(), cfg.aux_adam_lr or cfg.adam_lr)
        n_classes = setup.dataset.num_classes
        self.ema_aux = SampleLossAverage(labels, n_classes, cfg.ema)
        self.ema_main = SampleLossAverage(labels, n_classes, cfg.ema)
        self.gen = setup.generator("selecmix", "pairs")
        self.main.train()
        self.aux.train()

    def mix(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch mixed with contradicting partners, labelled with the partners' labels."""
        with torch.no_grad():
            z = F.normalize(self.aux.embed(x), dim=1)
        mode = SAME_LABEL if torch.rand((), generator=self.gen) < 0.5 else OTHER_LABEL
        partner = select_partners(z @ z.T, y, mode)
        lam = (torch.rand(len(y), generator=self.gen) * self.cfg.mix_max).to(x.device).view(-1, *[1] * (x.dim() - 1))
        return lam * x + (1 - lam) * x[partner], y[partner]

    def step(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        logits_aux = self.aux(x)
        loss = generalized_cross_entropy(logits_aux, y, cfg.q).mean()
        x_mix, y_mix = self.mix(x, y)
        loss = loss + cfg.a * F.cross_entropy(self.main(x_mix), y_mix)
        if cfg.b:
            logits = self.main(x)
            ce = F.cross_entropy(logits, y, reduction="none")
            self.ema_aux.update(index, F.cross_entropy(logits_aux, y, reduction="none"))
            self.ema_main.update(index, ce)
            w = relative_difficulty(self.ema_aux.normalized(index), self.ema_main.normalized(index)).to(x.device)
            loss = loss + cfg.b * (w * ce).mean()
        self.opt_main.zero_grad()
        self.opt_aux.zero_grad()
        loss.backward()
        self.opt_main.step()
        self.opt_aux.step()
        return loss.detach()

    def end_epoch(self) -> None:
        self.opt_main.end_epoch()
        self.opt_aux.end_epoch()

    def model(self) -> nn.Module:
        return self.main
