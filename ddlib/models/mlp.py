"""A small fully connected network: the model LfF and DFA use on Colored MNIST.

The image is flattened (3·28·28 = 2,352 inputs for Colored MNIST) and passed through ReLU hidden
layers (three of width 100 by default) to the output. ``embed`` gives the last hidden layer, so the
network can serve as an encoder (DFA) as well as a classifier; initialisation draws from an explicit
generator, as every network of the repository does.
"""

from __future__ import annotations

import torch
from torch import nn

from ddlib.models.convnet import init_parameters


class MLP(nn.Module):
    """``in_features`` → ``hidden`` (ReLU after each) → ``out_features``."""

    def __init__(self, in_features: int, out_features: int, hidden: tuple[int, ...] = (100, 100, 100)):
        super().__init__()
        if in_features < 1 or out_features < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"MLP sizes must be positive, got in={in_features}, hidden={hidden}, out={out_features}")
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True)]
            width = h
        self.features = nn.Sequential(nn.Flatten(), *layers)
        self.feature_dim = width
        self.classifier = nn.Linear(width, out_features)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def build_mlp(channels: int, out_features: int, image_size: tuple[int, int] | int, generator: torch.Generator,
              device: torch.device | str = "cpu", hidden: tuple[int, ...] = (100, 100, 100)) -> MLP:
    """A freshly initialised :class:`MLP` for images of this shape (weights drawn from ``generator``)."""
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    model = MLP(channels * h * w, out_features, hidden)
    init_parameters(model, generator)
    return model.to(device)

