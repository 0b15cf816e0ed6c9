"""The ConvNet of DC, DSA, DM and MTT, with explicit, generator-driven initialisation.

Each block is Conv 3×3 → norm → ReLU → 2×2 pool; then flatten and one linear classifier.
``embed(x)`` returns the flattened features before the classifier (what DM matches).
28×28 inputs are padded by 3 in the first convolution (28 → 32, as the reference does for
MNIST) whatever their channel count, and the feature count is computed, not assumed.

On a CPU, ``embed`` takes a faster route than one default-layout pass over the whole batch
(measured by ``python -m ddlib.tools.benchmark_dm layers`` and ``dm``):

* the batch goes through in chunks of :data:`CPU_TRAINING_CHUNK` (with autograd) or
  :data:`CPU_INFERENCE_CHUNK` images (without): the activations of a few dozen images stay in
  the CPU caches. Every layer acts on each image alone (batch norm excepted: then one pass), so
  the outputs are the same; only the summation order of the weight gradients changes.
* without autograd (DM's real side, prediction, embedding the training set), the first block runs
  channels-last. Its 3-channel convolution is the most expensive layer in the default layout and
  several times faster channels-last. The later blocks and every backward pass stay in the default
  layout, because channels-last is slower there on this kind of CPU.

Both change float rounding (outputs agree to ~1e-6), so :data:`NUMERICS` enters the cache key of
every artifact a ConvNet computes: nothing computed by the earlier numerics comes back from the
cache. The parameters and their initialisation are untouched; CUDA takes the default path.

* every 2×2 average pool on a CPU is four strided slices added in PyTorch's order
  (:class:`AvgPool2x2`), and its gradient a quarter of the output's written to four pixels: PyTorch's
  default-layout CPU kernels are 2-3.5× slower (a 2-core Xeon, 64 maps of 32×32×32: forward 3.0 →
  0.97 ms, backward 2.6 → 0.74 ms; ``python -m ddlib.tools.benchmark_dm pool``). Both come out bit
  for bit as PyTorch's own (tested), so this one leaves the numerics, and every cache key, as they were.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ddlib.core.validation import AT_LEAST_ONE, check_config

NORMS = ("instancenorm", "batchnorm", "layernorm", "groupnorm", "none")
POOLINGS = ("avgpooling", "maxpooling", "none")

# The version of ConvNet's CPU arithmetic (see the module docstring); part of the cache keys.
# 1: one default-layout pass per batch; 2: chunked, channels-last first block without autograd.
NUMERICS = 2
# Images per CPU chunk, with and without autograd (a 2-core EPYC: 100-image training step 44 → 36 ms,
# no-grad embedding 2× faster than a whole-batch default-layout pass).
CPU_TRAINING_CHUNK = 64
CPU_INFERENCE_CHUNK = 64


@dataclass(frozen=True)
class ConvNetConfig:
    depth: int = 3
    width: int = 128
    norm: str = "instancenorm"
    pooling: str = "avgpooling"

    def __post_init__(self) -> None:
        check_config(self, depth=AT_LEAST_ONE, width=AT_LEAST_ONE)
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; choose one of {NORMS}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; choose one of {POOLINGS}")


def _norm_layer(kind: str, channels: int, size: int) -> nn.Module:
    if kind == "instancenorm":  # the reference's "instance norm": one group per channel, affine
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batchnorm":
        return nn.BatchNorm2d(channels)
    if kind == "layernorm":
        return nn.LayerNorm([channels, size, size], elementwise_affine=True)
    if kind == "groupnorm":
        return nn.GroupNorm(4 if channels % 4 == 0 else 1, channels, affine=True)
    return nn.Identity()


class ConvNet(nn.Module):
    def __init__(self, channels: int, num_classes: int, image_size: tuple[int, int] | int,
                 config: ConvNetConfig = ConvNetConfig()):
        super().__init__()
        h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
        if h != w:
            raise ValueError(f"ConvNet expects square images, got {h}×{w}")
        self.config = config
        layers: list[nn.Module] = []
        size, in_ch = h, channels
        for d in range(config.depth):
            pad = 3 if (d == 0 and size == 28) else 1
            layers.append(nn.Conv2d(in_ch, config.width, kernel_size=3, padding=pad))
            size = size + 2 * pad - 2
            layers.append(_norm_layer(config.norm, config.width, size))
            layers.append(nn.ReLU(inplace=True))
            if config.pooling != "none":
                if size < 2:  # a 1-pixel map cannot be pooled: without this check, a ZeroDivisionError much later
                    raise ValueError(f"ConvNetConfig.depth={config.depth} is too deep for {h}×{w} images with "
                                     f"{config.pooling}: the feature map is {size}×{size} before block {d + 1}; "
                                     f"use depth ≤ {d} (or pooling='none')")
                layers.append(nn.AvgPool2d(2) if config.pooling == "avgpooling" else nn.MaxPool2d(2))
                size //= 2
            in_ch = config.width
        self.features = nn.Sequential(*layers)
        self.feature_dim = config.width * size * size
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dim() != 4:
            return self._embed_default(x)
        inference = not torch.is_grad_enabled()
        chunk = CPU_INFERENCE_CHUNK if inference else CPU_TRAINING_CHUNK
        one_pass = len(x) <= chunk or (self.config.norm == "batchnorm" and self.training)  # batch stats
        run = self._embed_cpu_inference if inference else self._embed_default
        if one_pass:
            return run(x)
        return torch.cat([run(x[i:i + chunk]) for i in range(0, len(x), chunk)])

    def _embed_default(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return self.features(x).flatten(1)
        return _run_layers(self.features, x).flatten(1)

    def _first_block_end(self) -> int:
        """Index in ``features`` just past the first block's last layer (pool, or ReLU without pooling)."""
        return 3 if self.config.pooling == "none" else 4

    def _embed_cpu_inference(self, x: torch.Tensor) -> torch.Tensor:
        # weight *and* input channels-last: with only the input converted, oneDNN stays slow
        conv = self.features[0]
        weight = conv.weight.contiguous(memory_format=torch.channels_last)
        h = F.conv2d(x.contiguous(memory_format=torch.channels_last), weight, conv.bias,
                     conv.stride, conv.padding)
        end = self._first_block_end()
        h = _run_layers(self.features[1:end], h)
        h = h.contiguous()  # back to the default layout, faster for the later blocks
        return _run_layers(self.features[end:], h).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def _keeps_channels_last(x: torch.Tensor) -> bool:
    """Whether PyTorch's own pool would take and give ``x``'s gradient in the channels-last layout:
    a channels-last input, e.g. after DSA's crop (a permuted gather)."""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


class AvgPool2x2(torch.autograd.Function):
    """``F.avg_pool2d(x, 2)`` of an [N, C, H, W] CPU tensor with even H and W, as four strided
    slices summed in the order PyTorch's kernel sums a window (row by row) and divided by four.
    PyTorch's default-layout CPU kernel is several times slower (the module docstring). The result
    keeps ``x``'s layout, as PyTorch's pool does: the layers after it then pick the same kernels.

    The backward pass is the exact gradient written out (:class:`_AvgPool2x2Gradient`), itself
    differentiable: MTT differentiates through it a second time. Inside ``torch.func`` transforms
    (the k-model evaluation's vmap), where layouts cannot be queried, PyTorch's pool runs instead."""

    @staticmethod
    def forward(x: torch.Tensor) -> torch.Tensor:
        y = x[..., 0::2, 0::2] + x[..., 0::2, 1::2]
        y += x[..., 1::2, 0::2]
        y += x[..., 1::2, 1::2]
        return y.div_(4)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.channels_last = _keeps_channels_last(inputs[0])

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _AvgPool2x2Gradient.apply(grad, ctx.channels_last)


class _AvgPool2x2Gradient(torch.autograd.Function):
    """The gradient of a 2×2 average pool: a quarter of each output gradient, copied to its window,
    in the pool input's layout. Its own derivative is the pool again (as in PyTorch's formula), so
    MTT's second derivative comes out bit for bit as PyTorch's too."""

    @staticmethod
    def forward(grad: torch.Tensor, channels_last: bool) -> torch.Tensor:
        # written into the four pixel positions of a preallocated map: 2.6x faster on a 2-core Xeon
        # than two repeat_interleave copies (64 maps of 16x16: 2.2 -> 0.85 ms), the same values
        quarter = grad * 0.25
        h, w = quarter.shape[-2:]
        layout = torch.channels_last if channels_last else torch.contiguous_format
        out = torch.empty((*quarter.shape[:-2], 2 * h, 2 * w), dtype=quarter.dtype, device=quarter.device,
                          memory_format=layout)
        windows = out.unflatten(-1, (w, 2)).unflatten(-3, (h, 2))  # [..., h, 2, w, 2], a view of out
        windows[..., :, 0, :, 0] = quarter
        windows[..., :, 0, :, 1] = quarter
        windows[..., :, 1, :, :] = windows[..., :, 0, :, :]
        return out

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        pass

    @staticmethod
    def backward(ctx, grad_grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return AvgPool2x2.apply(grad_grad), None


def _fast_pool(layer: nn.Module, h: torch.Tensor) -> bool:
    if torch._C._functorch.is_functorch_wrapped_tensor(h):  # vmap / grad: see AvgPool2x2
        return False
    return (isinstance(layer, nn.AvgPool2d) and layer.kernel_size in (2, (2, 2)) and layer.stride in (2, (2, 2))
            and layer.padding in (0, (0, 0)) and not layer.ceil_mode and h.dim() == 4
            and h.shape[-1] % 2 == 0 and h.shape[-2] % 2 == 0)


def _run_layers(layers: nn.Sequential, h: torch.Tensor) -> torch.Tensor:
    """``layers(h)`` on a CPU, every 2×2 average pool as :class:`AvgPool2x2`."""
    for layer in layers:
        h = AvgPool2x2.apply(h) if _fast_pool(layer, h) else layer(h)
    return h


@torch.no_grad()
def init_parameters(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """PyTorch's default initialisation, drawn from ``generator`` (not the global RNG).

    Conv and linear weights: Kaiming-uniform with a = √5; biases U(±1/√fan_in); norm layers:
    weight 1, bias 0. The numbers are drawn on the generator's device (a CUDA generator
    re-initialises a network on the GPU without a host copy).
    """
    draw_on = generator.device
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            bound = 1.0 / math.sqrt(fan_in)  # = kaiming_uniform(a=√5) bound: √6/√((1+5)·fan_in)
            module.weight.copy_(torch.rand(module.weight.shape, generator=generator, device=draw_on) * 2 * bound - bound)
            if module.bias is not None:
                module.bias.copy_(torch.rand(module.bias.shape, generator=generator, device=draw_on) * 2 * bound - bound)
        elif isinstance(module, (nn.GroupNorm, nn.BatchNorm2d, nn.LayerNorm)):
            if getattr(module, "weight", None) is not None:
                module.weight.fill_(1.0)
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
    return model


def build_convnet(channels: int, num_classes: int, image_size: tuple[int, int] | int,
                  config: ConvNetConfig, generator: torch.Generator,
                  device: torch.device | str = "cpu") -> ConvNet:
    """A freshly initialised ConvNet (parameters drawn on the CPU from ``generator``, then moved)."""
    model = ConvNet(channels, num_classes, image_size, config)
    init_parameters(model, generator)
    return model.to(device)
