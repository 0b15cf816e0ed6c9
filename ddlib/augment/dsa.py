"""Differentiable Siamese Augmentation (DSA, Zhao & Bilen 2021) with explicit randomness.

One call applies ONE family drawn uniformly from the strategy string
(``"color_crop_cutout_flip_scale_rotate"``; drop ``flip`` for digits):

* color   — brightness ``+U(-0.5, 0.5)`` → saturation ``×U(0, 2)`` around the per-pixel channel
            mean → contrast ``×U(0.5, 1.5)`` around the image mean;
* crop    — integer translation of up to 1/8 of the side, zero fill;
* cutout  — one zeroed square of half the side;
* flip    — horizontal flip with probability 0.5;
* scale   — ``×U(1/1.2, 1.2)`` per axis;
* rotate  — ``U(-15°, 15°)``.

Parameters are drawn per *group*: in Siamese use the real and the synthetic batch of one class
form one group and share one draw; in per-sample use (training a model) every sample is its own
group. Draws come from the generator's device: a CPU ``torch.Generator`` gives the same draws on
every device; a CUDA generator (the device-resident distillation path) draws the parameters on the
GPU without a host round trip, with the family picked from a separate CPU generator (a Python
branch needs it on the host) — those runs repeat bit for bit on one device type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

FAMILIES = ("color", "crop", "cutout", "flip", "scale", "rotate")


@dataclass(frozen=True)
class AugmentParams:
    """One draw: the family and its parameters, one row per group."""

    family: str
    values: torch.Tensor  # [groups, k], CPU float

    @property
    def groups(self) -> int:
        return int(self.values.shape[0])


class DSA:
    def __init__(self, strategy: str = "color_crop_cutout_flip_scale_rotate", scale: float = 1.2,
                 rotate_degrees: float = 15.0, crop_ratio: float = 0.125, cutout_ratio: float = 0.5):
        families = tuple(f for f in strategy.split("_") if f)
        unknown = [f for f in families if f not in FAMILIES]
        if unknown or not families:
            raise ValueError(f"unknown DSA families {unknown} in strategy {strategy!r}; known: {FAMILIES}")
        self.strategy = strategy
        self.families = families
        self.scale = scale
        self.rotate_degrees = rotate_degrees
        self.crop_ratio = crop_ratio
        self.cutout_ratio = cutout_ratio

    # -- drawing -------------------------------------------------------------------------------
    def draw(self, groups: int, generator: torch.Generator, image_size: int,
             family_generator: torch.Generator | None = None) -> AugmentParams:
        """One family (from ``family_generator``, default ``generator``; it must be a CPU generator)
        and its parameters for ``groups`` groups, drawn on ``generator``'s device."""
        pick = generator if family_generator is None else family_generator
        family = self.families[int(torch.randint(len(self.families), (1,), generator=pick))]
        dev = generator.device
        rand = lambda k: torch.rand(groups, k, generator=generator, device=dev)  # noqa: E731
        if family == "color":
            values = rand(3)
        elif family == "crop":
            shift = int(image_size * self.crop_ratio + 0.5)
            values = torch.randint(-shift, shift + 1, (groups, 2), generator=generator, device=dev).float()
        elif family == "cutout":
            size = int(image_size * self.cutout_ratio + 0.5)
            values = torch.randint(0, image_size + (1 - size % 2), (groups, 2), generator=generator,
                                   device=dev).float()
        elif family == "flip":
            values = (rand(1) < 0.5).float()
        elif family == "scale":
            values = rand(2) * (self.scale - 1.0 / self.scale) + 1.0 / self.scale
        else:  # rotate
            values = (rand(1) - 0.5) * 2 * self.rotate_degrees / 180 * math.pi
        return AugmentParams(family, values)

    # -- applying ------------------------------------------------------------------------------
    def apply(self, x: torch.Tensor, params: AugmentParams, group_index: torch.Tensor | None = None) -> torch.Tensor:
        """Augment ``x`` [N, C, H, W]; sample n uses the parameters of group ``group_index[n]``
        (default: all samples use group 0)."""
        if group_index is None:
            group_index = torch.zeros(len(x), dtype=torch.long, device=params.values.device)
        # indexed where the parameters live: no host round trip when both are on the GPU
        v = params.values[group_index.to(params.values.device)].to(device=x.device, dtype=x.dtype)  # [N, k]
        return getattr(self, f"_{params.family}")(x, v)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Per-sample augmentation: every sample its own draw (one family for the call)."""
        params = self.draw(len(x), generator, x.shape[-1])
        return self.apply(x, params, torch.arange(len(x)))

    def siamese(self, batches: list[torch.Tensor], group_indices: list[torch.Tensor], groups: int,
                generator: torch.Generator) -> list[torch.Tensor]:
        """Augment several batches with one shared draw per group (real and synthetic alike)."""
        params = self.draw(groups, generator, batches[0].shape[-1])
        return [self.apply(b, params, g) for b, g in zip(batches, group_indices)]

    # -- the families ---------------------------------------------------------------------------
    @staticmethod
    def _color(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        x = x + (v[:, 0] - 0.5).view(-1, 1, 1, 1)
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (v[:, 1] * 2.0).view(-1, 1, 1, 1) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * (v[:, 2] + 0.5).view(-1, 1, 1, 1) + mean

    def _crop(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        # pad by the largest shift draw() can give (not the batch's largest, which needs a host
        # read): the gathered pixels, zeros included, are the same either way
        shift = max(int(w * self.crop_ratio + 0.5), 1)
        padded = F.pad(x, (shift, shift, shift, shift))
        rows = (torch.arange(h, device=x.device).view(1, h) + shift - v[:, 0:1].long()).clamp(0, h + 2 * shift - 1)
        cols = (torch.arange(w, device=x.device).view(1, w) + shift - v[:, 1:2].long()).clamp(0, w + 2 * shift - 1)
        batch = torch.arange(n, device=x.device).view(n, 1, 1)
        out = padded.permute(0, 2, 3, 1)[batch, rows.view(n, h, 1), cols.view(n, 1, w)]  # [N, H, W, C]
        return out.permute(0, 3, 1, 2)

    def _cutout(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        size = int(w * self.cutout_ratio + 0.5)
        r = torch.arange(h, device=x.device).view(1, h)
        c = torch.arange(w, device=x.device).view(1, w)
        top = v[:, 0:1].long() - size // 2
        left = v[:, 1:2].long() - size // 2
        in_rows = (r >= top) & (r < top + size)  # [N, H]
        in_cols = (c >= left) & (c < left + size)  # [N, W]
        keep = ~(in_rows.view(n, 1, h, 1) & in_cols.view(n, 1, 1, w))
        return x * keep.to(x.dtype)

    @staticmethod
    def _flip(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        flip = v[:, 0].view(-1, 1, 1, 1) > 0.5
        return torch.where(flip, x.flip(3), x)

    @staticmethod
    def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        grid = F.affine_grid(theta, list(x.shape), align_corners=True)
        return F.grid_sample(x, grid, align_corners=True)

    def _scale(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        zeros = torch.zeros_like(v[:, 0])
        theta = torch.stack([torch.stack([v[:, 0], zeros, zeros], 1),
                             torch.stack([zeros, v[:, 1], zeros], 1)], 1)
        return self._affine(x, theta)

    def _rotate(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        t = v[:, 0]
        zeros = torch.zeros_like(t)
        theta = torch.stack([torch.stack([torch.cos(t), -torch.sin(t), zeros], 1),
                             torch.stack([torch.sin(t), torch.cos(t), zeros], 1)], 1)
        return self._affine(x, theta)

