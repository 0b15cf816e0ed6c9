"""Which torch device to run on: ``$DDLIB_DEVICE`` if set, else CUDA when available, else CPU."""

from __future__ import annotations

import torch

from ddlib.core import env

DEVICE_KINDS = ("cpu", "cuda", "cuda:N (a GPU index)", "mps")


def pick_device(preference: str | None = None) -> torch.device:
    """The device named by ``preference``, else ``$DDLIB_DEVICE``, else CUDA when available, else CPU."""
    from_env = preference is None and env.device() is not None
    choice = preference or env.device() or ("cuda" if torch.cuda.is_available() else "cpu")
    origin = f"${env.DEVICE_ENV}={choice!r}" if from_env else f"device {choice!r}"
    try:
        device = torch.device(choice)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"{origin} is not a torch device; use one of {', '.join(DEVICE_KINDS)}") from exc
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{origin} is a device type ddlib does not run on; use one of {', '.join(DEVICE_KINDS)}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"{origin} requested but MPS is not available; use 'cpu'")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"{origin} requested but CUDA is not available; use 'cpu'")
    return device


def numerics_identity(device: torch.device | str) -> dict[str, object]:
    """What, besides code and configuration, moves the numbers a device computes: the device kind,
    the torch release, and on CUDA the GPU model, the CUDA release and the TF32 switches. Part of the
    cache key of every artifact computed on a device, so a CPU laptop and a GPU node sharing one cache
    never mix their results."""
    device = torch.device(device)
    identity: dict[str, object] = {"device": device.type, "torch": torch.__version__.split("+")[0]}
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        identity.update({"gpu": torch.cuda.get_device_name(index), "cuda": torch.version.cuda,
                         "tf32": {"matmul": bool(torch.backends.cuda.matmul.allow_tf32),
                                  "cudnn": bool(torch.backends.cudnn.allow_tf32)}})
    return identity
