"""Numeric precision of the fast device path: one setting, one context manager.

* ``"fp32"`` — strict float32 (the default; CPU results stay bit for bit as they were). On CUDA the
  context switches TF32 off for matmuls *and* for cuDNN convolutions while it is open: PyTorch
  lets cuDNN convolutions use TF32 by default, so without this "fp32" convolutions would not be;
* ``"tf32"`` — float32 tensors, but CUDA matmuls and convolutions may use TF32 tensor cores
  (no effect on a CPU);
* ``"bf16"`` — forward passes under ``torch.autocast`` with bfloat16 (also on a CPU, where it
  is slow; there it only serves tests).

Whether a setting other than fp32 is used for reported numbers is decided by measurement: it must
change the headline accuracy by less than its interval (see ``ddlib.tools.headline``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

PRECISIONS = ("fp32", "tf32", "bf16")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    return precision


@contextlib.contextmanager
def precision_context(precision: str, device: torch.device | str) -> Iterator[None]:
    """Run the enclosed forward passes in ``precision`` on ``device`` (see the module docstring);
    global TF32 switches are restored on exit."""
    device = torch.device(device)
    check_precision(precision)
    if precision == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
        return
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn
