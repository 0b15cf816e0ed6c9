"""Networks used for distillation, evaluation and surrogates."""

from ddlib.models.convnet import ConvNet, ConvNetConfig, build_convnet, init_parameters
from ddlib.models.mlp import MLP, build_mlp

__all__ = ["ConvNet", "ConvNetConfig", "MLP", "build_convnet", "build_mlp", "init_parameters"]
