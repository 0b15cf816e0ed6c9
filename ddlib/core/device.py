"""Which torch device to run on: ``$DDLIB_DEVICE`` if set, else CUDA when available, else CPU."""

from __future__ import annotations

import os

import torch


def pick_device(preference: str | None = None) -> torch.device:
    choice = preference or os.environ.get("DDLIB_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(choice)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {choice!r} requested but CUDA is not available; use 'cpu'")
    return device
