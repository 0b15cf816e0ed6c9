"""Where raw data sets are looked for, and the error raised when none has them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

DATA_ROOT_ENV = "DDLIB_DATA_ROOT"
OFFLINE_ENV = "DDLIB_OFFLINE"


class DataSourceError(RuntimeError):
    """No configured source could provide a data set; the message lists how to provide it."""


def data_roots(data_root: str | os.PathLike | Sequence[str | os.PathLike] | None = None) -> list[Path]:
    """Candidate data roots: the explicit argument first, then ``$DDLIB_DATA_ROOT`` (os.pathsep-separated)."""
    roots: list[Path] = []
    if data_root is not None:
        items = [data_root] if isinstance(data_root, (str, os.PathLike)) else list(data_root)
        roots.extend(Path(r).expanduser() for r in items)
    env = os.environ.get(DATA_ROOT_ENV, "")
    roots.extend(Path(p).expanduser() for p in env.split(os.pathsep) if p)
    return [r for r in roots if r.is_dir()]


def offline() -> bool:
    """True when ``$DDLIB_OFFLINE`` asks to skip every network download attempt."""
    return os.environ.get(OFFLINE_ENV, "").lower() not in ("", "0", "false", "no")
