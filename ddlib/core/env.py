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
``DDLIB_OUTPUT``           the folder outputs go under (figures/, tables) where ddlib is installed, not run
                           from its checkout (default: the current folder; never site-packages)
``DDLIB_REUSE_STALE``      1: a missing artifact may be taken from a build by other code (after a
                           cosmetic edit; each reuse is announced); unset: never
========================== =====================================================================
"""

from __future__ import annotations

import math
import os
from collections.abc import MutableMapping
from pathlib import Path

PROFILE_ENV = "DDLIB_PROFILE"
DATA_ROOT_ENV = "DDLIB_DATA_ROOT"
OFFLINE_ENV = "DDLIB_OFFLINE"
CACHE_ENV = "DDLIB_CACHE"
DEVICE_ENV = "DDLIB_DEVICE"
WORKERS_ENV = "DDLIB_WORKERS"
PROGRESS_INTERVAL_ENV = "DDLIB_PROGRESS_INTERVAL"
FIGURES_ENV = "DDLIB_FIGURES"
OUTPUT_ENV = "DDLIB_OUTPUT"
REUSE_STALE_ENV = "DDLIB_REUSE_STALE"

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
    """A folder path, ``~`` expanded; a ``~user`` that names no user is an error, not a folder called ``~user``.

    A relative path is an error here: it would name a different folder in every working directory
    (a notebook kernel runs in ``notebooks/``, the shell elsewhere), so one run could use two caches.
    The entry points (``reproduce.sh``, ``python -m ddlib.tools.*``) make such a value absolute once,
    against the folder they were started in (:func:`absolutize_relative_paths`), before any kernel starts."""
    value = raw(name)
    if value is None:
        return None
    return _checked(name, value, whole=True)


def paths(name: str) -> list[Path]:
    """A list of folders separated by ``os.pathsep`` (each as :func:`path` reads it)."""
    value = raw(name)
    if value is None:
        return []
    return [_checked(name, part) for part in value.split(os.pathsep) if part]


def _checked(name: str, value: str, whole: bool = False) -> Path:
    expanded = _expand(value)
    if expanded is None:
        where = f"${name}={value!r}: " if whole else f"${name}: "
        raise EnvError(f"{where}{value.split(os.sep)[0]!r} names no user on this machine; give an absolute path "
                       "or one starting with ~/")
    if not expanded.is_absolute():
        raise EnvError(f"${name} holds the relative path {value!r}, which names a different folder in each "
                       f"working directory (a notebook kernel runs in notebooks/); give an absolute path, e.g. "
                       f"export {name}=\"$PWD/{value}\", or start the run through ./reproduce.sh or "
                       "python -m ddlib.tools.*, which make it absolute once")
    return expanded


def _expand(value: str) -> Path | None:
    """``value`` with ``~`` expanded; ``None`` where ``~user`` names no user (Python raises or keeps the ``~``)."""
    try:
        expanded = Path(value).expanduser()
    except RuntimeError:  # "Could not determine home directory"
        return None
    return None if str(expanded).startswith("~") else expanded


PATH_VARIABLES = (CACHE_ENV, FIGURES_ENV, OUTPUT_ENV, DATA_ROOT_ENV)


def absolutize_relative_paths(environ: MutableMapping[str, str] | None = None,
                              cwd: Path | None = None) -> dict[str, str]:
    """Make every relative path in the path variables absolute against ``cwd`` (default: the current
    folder), in ``environ`` (default: ``os.environ``, so that child processes and notebook kernels
    inherit the absolute value). Called once, at an entry point. Returns ``{variable: new value}`` for
    each variable it changed, to be recorded by the caller."""
    environ = os.environ if environ is None else environ
    base = Path.cwd() if cwd is None else Path(cwd)
    changed = {}
    for name in PATH_VARIABLES:
        value = environ.get(name, "").strip()
        if not value:
            continue
        parts = []
        for part in value.split(os.pathsep) if name == DATA_ROOT_ENV else [value]:
            expanded = _expand(part) if part else None
            parts.append(str(base / expanded) if expanded is not None and not expanded.is_absolute() else part)
        new = os.pathsep.join(parts)
        if new != value:
            environ[name] = new
            changed[name] = new
    return changed


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


def output() -> Path | None:
    return path(OUTPUT_ENV)


def reuse_stale() -> bool:
    return flag(REUSE_STALE_ENV)


def absolutize_at_entry(program: str) -> dict[str, str]:
    """:func:`absolutize_relative_paths` for a command-line entry point: each change is printed (to
    stderr, so tables on stdout stay clean) naming the variable and its absolute value."""
    import sys
    changed = absolutize_relative_paths()
    for name, value in changed.items():
        print(f"{program}: relative ${name} made absolute against {Path.cwd()}: {name}={value}", file=sys.stderr)
    return changed
