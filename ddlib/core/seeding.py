"""Explicit randomness: every random draw comes from a generator derived from a config seed."""

from __future__ import annotations

import hashlib

import torch


def derive_seed(seed: int, *labels: object) -> int:
    """A 63-bit seed derived from ``seed`` and labels, e.g. ``derive_seed(0, "dm", "init")``.

    Different labels give independent streams, and the result does not depend on the order in
    which other streams were created (unlike consuming one global RNG)."""
    text = "/".join([str(seed), *map(str, labels)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def torch_generator(seed: int, *labels: object, device: torch.device | str = "cpu") -> torch.Generator:
    """The stream named ``labels`` of ``seed``. ``device`` (default CPU) says where it draws: a CUDA
    generator draws on the GPU without a host round trip, but its numbers differ from the CPU
    stream of the same name, so runs repeat bit for bit on one device type, not across them."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, *labels))
