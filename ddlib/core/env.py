"""Every environment variable ddlib reads, parsed in one place.

Each reader returns the variable's value in its final type, or ``None`` where it is unset or empty,
and raises :class:`EnvError` naming the variable, what it holds and what it expects where the value
cannot be used. The callers (cache, data roots, device, progress bars, worker pools, profiles) decide
what an unset variable means.

========================== =====================================================================
``DDLIB_PROFILE``          profile name (smoke, quick, paper, ...), checked by ``get_profile``
``DDLIB_DATA_ROOT``        folder(s) with the raw data sets, separated by ``os.pathsep``
``DDLIB_OFFLINE``          1/true/yes: no download attempts; 0/false/no or unset: downloads allowed
``DDLIB_CACHE``            the cache folder
``DDLIB_DEVICE``           torch device (cpu, cuda, cuda:1, mps)
``DDLIB_WORKERS``          worker processes of large builds, a whole number ≥ 1
``DDLIB_PROGRESS_INTERVAL`` seconds between progress-bar updates when not on a terminal, > 0
``DDLIB_FIGURES``          the root folder of figures and result tables (default: the repository's figures/)
========================== =====================================================================
"""

from __future__ import annotations

import math
import os
from pathlib import Path

PROFILE_ENV = "DDLIB_PROFILE"
DATA_ROOT_ENV = "DDLIB_DATA_ROOT"
OFFLINE_ENV = "DDLIB_OFFLINE"
CACHE_ENV = "DDLIB_CACHE"
DEVICE_ENV = "DDLIB_DEVICE"
WORKERS_ENV = "DDLIB_WORKERS"
PROGRESS_INTERVAL_ENV = "DDLIB_PROGRESS_INTERVAL"
FIGURES_ENV = "DDLIB_FIGURES"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class EnvError(ValueError):
    """An environment variable holds a value ddlib cannot use; the message names it and what it expects."""


def raw(name: str) -> str | None:
    """The variable's text, stripped; ``None`` where it is unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or None


def flag(name: str) -> bool:
    """A yes/no variable: unset or empty is ``False``."""
    value = raw(name)
    if value is None or value.lower() in _FALSE:
        return False
    if value.lower() in _TRUE:
        return True
    raise EnvError(f"${name}={value!r} is not a yes/no value; set it to 1 (yes) or 0 (no), or unset it")


def whole_number(name: str, minimum: int) -> int | None:
    value = raw(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise EnvError(f"${name}={value!r} is not a whole number; set it to a whole number ≥ {minimum}, "
                       "or unset it") from None
    if number < minimum:
        raise EnvError(f"${name}={value!r} must be at least {minimum}")
    return number


def positive_number(name: str) -> float | None:
    value = raw(name)
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        raise EnvError(f"${name}={value!r} is not a number; set it to a number of seconds > 0, or unset it") from None
    if not (number > 0 and math.isfinite(number)):
        raise EnvError(f"${name}={value!r} must be a finite number > 0")
    return number


def path(name: str) -> Path | None:
    """A folder path, ``~`` expanded; a ``~user`` that names no user is an error, not a folder called ``~user``."""
    value = raw(name)
    if value is None:
        return None
    expanded = _expand(value)
    if expanded is None:
        raise EnvError(f"${name}={value!r}: {value.split(os.sep)[0]!r} names no user on this machine; "
                       "give an absolute path or one starting with ~/")
    return expanded


def paths(name: str) -> list[Path]:
    """A list of folders separated by ``os.pathsep`` (each as :func:`path` reads it)."""
    value = raw(name)
    if value is None:
        return []
    out = []
    for part in value.split(os.pathsep):
        if not part:
            continue
        expanded = _expand(part)
        if expanded is None:
            raise EnvError(f"${name}: {part!r} names no user on this machine; give an absolute path or one "
                           "starting with ~/")
        out.append(expanded)
    return out


def _expand(value: str) -> Path | None:
    """``value`` with ``~`` expanded; ``None`` where ``~user`` names no user (Python raises or keeps the ``~``)."""
    try:
        expanded = Path(value).expanduser()
    except RuntimeError:  # "Could not determine home directory"
        return None
    return None if str(expanded).startswith("~") else expanded


def progress_interval() -> float | None:
    return positive_number(PROGRESS_INTERVAL_ENV)


def workers() -> int | None:
    return whole_number(WORKERS_ENV, 1)


def offline() -> bool:
    return flag(OFFLINE_ENV)


def device() -> str | None:
    return raw(DEVICE_ENV)


def profile() -> str | None:
    return raw(PROFILE_ENV)


def cache() -> Path | None:
    return path(CACHE_ENV)


def data_roots() -> list[Path]:
    return paths(DATA_ROOT_ENV)


def figures() -> Path | None:
    return path(FIGURES_ENV)
