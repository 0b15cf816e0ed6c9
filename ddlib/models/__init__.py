"""Networks used for distillation, evaluation and surrogates."""

from ddlib.models.convnet import ConvNet, ConvNetConfig, build_convnet, init_parameters

__all__ = ["ConvNet", "ConvNetConfig", "build_convnet", "init_parameters"]
