"""Where raw data sets are looked for, and the error raised when none has them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ddlib.core import env

DATA_ROOT_ENV = env.DATA_ROOT_ENV
OFFLINE_ENV = env.OFFLINE_ENV


class DataSourceError(RuntimeError):
    """No configured source could provide a data set; the message lists how to provide it."""


def data_roots(data_root: str | os.PathLike | Sequence[str | os.PathLike] | None = None) -> list[Path]:
    """Candidate data roots: the explicit argument first, then ``$DDLIB_DATA_ROOT`` (os.pathsep-separated).

    A root that is named but is not a folder is an error (:class:`DataSourceError` naming it), never
    silently dropped."""
    named: list[tuple[Path, str]] = []
    if data_root is not None:
        items = [data_root] if isinstance(data_root, (str, os.PathLike)) else list(data_root)
        for r in items:
            if not isinstance(r, (str, os.PathLike)):
                raise TypeError(f"data_root must be a path (or a list of paths), got {r!r}")
            named.append((Path(r).expanduser(), "the data_root argument"))
    try:
        from_env = env.data_roots()
    except env.EnvError as exc:
        raise DataSourceError(str(exc)) from None
    named.extend((p, f"${DATA_ROOT_ENV}") for p in from_env)
    for root, origin in named:
        if not root.is_dir():
            raise DataSourceError(f"{origin} names {root}, which is not an existing folder; point it at the folder "
                                  f"holding the data sets, or unset it")
    return [root for root, _ in named]


def offline() -> bool:
    """True when ``$DDLIB_OFFLINE`` asks to skip every network download attempt."""
    return env.offline()
