"""What the de-biasing objectives share: which network, which optimiser.

Every objective of this package takes ``model="convnet"`` (the evaluation protocol's ConvNet, from
the profile's :class:`~ddlib.training.objectives.TrainConfig`) or ``model="mlp"`` (the fully
connected network LfF and DFA use on Colored MNIST), and ``adam_lr``: ``None`` trains with the
protocol's optimiser (SGD, momentum, weight decay, learning rate × 0.1 at half), a number with Adam
at that learning rate and no weight decay (the methods' own setting).
"""

from __future__ import annotations

import torch
from torch import nn

from ddlib.models import build_mlp, init_parameters
from ddlib.training.objectives import TrainingSetup

MODELS = ("convnet", "mlp")


def check_model(model: str) -> None:
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")


def build_network(setup: TrainingSetup, model: str, *labels: object, out_features: int | None = None,
                  mlp_hidden: tuple[int, ...] = (100, 100, 100)) -> nn.Module:
    """A fresh network of kind ``model`` for the data set's images, initialised from stream ``labels``.

    Both kinds have ``embed(x)`` (features) and ``classifier`` (a linear layer); ``out_features``
    defaults to the number of classes."""
    check_model(model)
    ds = setup.dataset
    out = out_features or ds.num_classes
    if model == "mlp":
        return build_mlp(ds.channels, out, ds.image_size, setup.generator(*labels), setup.device, mlp_hidden)
    net = setup.build_convnet(*labels)
    if out != ds.num_classes:
        net.classifier = nn.Linear(net.feature_dim, out).to(setup.device)
        init_parameters(net.classifier, setup.generator(*labels, "classifier"))
    return net


class Optimisation:
    """An optimiser with its per-epoch schedule (protocol SGD + halving, or Adam without schedule)."""

    def __init__(self, setup: TrainingSetup, params, adam_lr: float | None):
        params = list(params)
        if adam_lr is None:
            self.optimizer = setup.sgd(params)
            self.scheduler = setup.halving_schedule(self.optimizer)
        else:
            if adam_lr <= 0:
                raise ValueError(f"adam_lr must be positive (or None for the protocol's SGD), got {adam_lr}")
            self.optimizer = torch.optim.Adam(params, lr=adam_lr, weight_decay=0.0)
            self.scheduler = None

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def step(self) -> None:
        self.optimizer.step()

    def end_epoch(self) -> None:
        if self.scheduler is not None:
            self.scheduler.step()


def steps_per_epoch(setup: TrainingSetup) -> int:
    return -(-setup.n_samples // setup.config.batch_size)
