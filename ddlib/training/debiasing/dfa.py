"""DFA ("DisEnt", learning debiased representation via disentangled feature augmentation).

Two encoders map an image to an *intrinsic* feature z_i and a *bias* feature z_b. Two linear
classifiers both read the concatenation [z_i, z_b]; gradients are stopped so that each trains only
its own encoder:

* C_i on [z_i, sg(z_b)] is trained with cross-entropy weighted by LfF's relative difficulty W
  (:mod:`.lff`; loss averages of C_i's and C_b's cross-entropies);
* C_b on [sg(z_i), z_b] is trained with GCE (:mod:`.gce`) and so absorbs the shortcut.

L_dis = W · CE(C_i) + λ_dis_align · GCE(C_b). After a warm-up (``swap_start``, a fraction of all
steps) the bias features are also *swapped*: permuted within the batch together with their labels,
which synthesises samples whose bias attribute disagrees with their class:
L_swap = W · CE(C_i([z_i, z_b_swap]), y) + λ_swap_align · GCE(C_b([z_i, z_b_swap]), y_swap), and the
loss becomes L_dis + λ_swap · L_swap. The evaluated network is C_i on [z_i, z_b].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ddlib.models import init_parameters
from ddlib.training.debiasing.gce import DEFAULT_Q, generalized_cross_entropy
from ddlib.training.debiasing.lff import SampleLossAverage, relative_difficulty
from ddlib.training.debiasing.networks import Optimisation, build_network, check_model, steps_per_epoch
from ddlib.training.objectives import TrainingSetup


def swap_bias_features(z_i: torch.Tensor, z_b: torch.Tensor, y: torch.Tensor,
                       permutation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """([z_i, z_b[perm]], the features C_b reads with z_i detached, the swapped bias labels y[perm]).

    The intrinsic half is left in place; only the bias features and their labels move."""
    z_b_swap = z_b[permutation]
    return torch.cat([z_i, z_b_swap.detach()], 1), torch.cat([z_i.detach(), z_b_swap], 1), y[permutation]


class DisentangledClassifier(nn.Module):
    """Intrinsic and bias encoders with their two classifiers; ``forward`` = C_i([z_i, z_b])."""

    def __init__(self, intrinsic: nn.Module, bias: nn.Module, feature_dim: int, num_classes: int):
        super().__init__()
        self.intrinsic, self.bias = intrinsic, bias
        self.classifier_i = nn.Linear(2 * feature_dim, num_classes)
        self.classifier_b = nn.Linear(2 * feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.intrinsic.embed(x), self.bias.embed(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z_i, z_b = self.features(x)
        return self.classifier_i(torch.cat([z_i, z_b], 1))


@dataclass(frozen=True)
class DFA:
    """DFA as a training objective. ``model``: "convnet" | "mlp" (MLP encoders 100-100-``mlp_features``);
    ``adam_lr``: None = the protocol's SGD, else Adam (Colored MNIST setting: 0.01) halved every
    ``lr_decay_every`` of the steps (0: never); ``swap_start``: fraction of the steps before swapping."""

    model: str = "convnet"
    adam_lr: float | None = None
    lambda_dis_align: float = 10.0
    lambda_swap_align: float = 10.0
    lambda_swap: float = 1.0
    swap_start: float = 0.2
    lr_decay_every: float = 0.2
    q: float = DEFAULT_Q
    ema: float = 0.7
    mlp_features: int = 16

    def __post_init__(self) -> None:
        check_model(self.model)
        if not 0 <= self.swap_start <= 1 or not 0 <= self.lr_decay_every <= 1:
            raise ValueError("swap_start and lr_decay_every are fractions of the training steps, in [0, 1]")

    def start(self, setup: TrainingSetup, labels: torch.Tensor) -> DFARun:
        return DFARun(self, setup, labels)

    def cache_config(self) -> dict[str, Any]:
        return {"kind": "dfa", **asdict(self)}


class DFARun:
    def __init__(self, cfg: DFA, setup: TrainingSetup, labels: torch.Tensor):
        self.cfg = cfg
        hidden = (100, 100, cfg.mlp_features)
        encoders = [build_network(setup, cfg.model, "dfa", part, mlp_hidden=hidden) for part in ("intrinsic", "bias")]
        n_classes = setup.dataset.num_classes
        self.net = DisentangledClassifier(*encoders, encoders[0].feature_dim, n_classes)
        init_parameters(self.net.classifier_i, setup.generator("dfa", "classifier-i"))
        init_parameters(self.net.classifier_b, setup.generator("dfa", "classifier-b"))
        self.net.to(setup.device).train()
        self.opt = Optimisation(setup, self.net.parameters(), cfg.adam_lr)
        total = steps_per_epoch(setup) * setup.config.epochs
        self.swap_from = int(round(cfg.swap_start * total))
        self.decay_every = int(round(cfg.lr_decay_every * total)) if cfg.adam_lr is not None else 0
        self.ema_i = SampleLossAverage(labels, n_classes, cfg.ema)
        self.ema_b = SampleLossAverage(labels, n_classes, cfg.ema)
        self.perm_gen = setup.generator("dfa", "swap")
        self.steps = 0

    def step(self, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        cfg, net = self.cfg, self.net
        z_i, z_b = net.features(x)
        logits_i = net.classifier_i(torch.cat([z_i, z_b.detach()], 1))
        logits_b = net.classifier_b(torch.cat([z_i.detach(), z_b], 1))
        ce_i = F.cross_entropy(logits_i, y, reduction="none")
        self.ema_i.update(index, ce_i)
        self.ema_b.update(index, F.cross_entropy(logits_b, y, reduction="none"))
        w = relative_difficulty(self.ema_b.normalized(index), self.ema_i.normalized(index)).to(x.device)
        loss = (w * ce_i).mean() + cfg.lambda_dis_align * generalized_cross_entropy(logits_b, y, cfg.q).mean()
        if self.steps >= self.swap_from:
            perm = torch.randperm(len(y), generator=self.perm_gen).to(y.device)
            for_i, for_b, y_swap = swap_bias_features(z_i, z_b, y, perm)
            swap = (w * F.cross_entropy(net.classifier_i(for_i), y, reduction="none")).mean() \
                + cfg.lambda_swap_align * generalized_cross_entropy(net.classifier_b(for_b), y_swap, cfg.q).mean()
            loss = loss + cfg.lambda_swap * swap
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.steps += 1
        if self.decay_every and self.steps % self.decay_every == 0:
            for group in self.opt.optimizer.param_groups:
                group["lr"] *= 0.5
        return loss.detach()

    def end_epoch(self) -> None:
        self.opt.end_epoch()

    def model(self) -> nn.Module:
        return self.net
