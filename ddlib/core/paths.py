"""Paths as they may appear in provenance and committed outputs: never a path of the build machine.

Provenance records where data came from ("idx files in <folder>"), where a build is cached, and error
messages name the folders searched. Written into a committed notebook or a result table, an absolute
path would only describe the machine that ran it. :func:`portable` rewrites every absolute path
under a data root, the cache, the repository or the home folder to the same path relative to it
(``$DDLIB_DATA_ROOT/fashion-mnist``, ``$DDLIB_CACHE/datasets/…``, ``~/…``), in strings and in nested
provenance alike.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ddlib.core.cache import cache_root

DATA_ROOT_ENV = "DDLIB_DATA_ROOT"  # the same variable as ddlib.sources.roots (core does not import sources)
CACHE_ENV = "DDLIB_CACHE"


def _aliases() -> list[tuple[str, str]]:
    """(absolute prefix, replacement) pairs, the longest prefix first so the most specific one wins."""
    pairs: list[tuple[str, str]] = []
    roots = [p for p in os.environ.get(DATA_ROOT_ENV, "").split(os.pathsep) if p]  # as written: aliases only
    for i, root in enumerate(roots):
        name = f"${DATA_ROOT_ENV}" if len(roots) == 1 else f"${DATA_ROOT_ENV}[{i}]"
        pairs.append((str(Path(root).expanduser().resolve()), name))
        pairs.append((str(Path(root).expanduser()), name))
    pairs.append((str(cache_root().resolve()), f"${CACHE_ENV}"))
    pairs.append((str(Path(__file__).resolve().parents[2]), "<repository>"))
    pairs.append((str(Path.home()), "~"))
    unique = {prefix: alias for prefix, alias in pairs if prefix not in ("", "/")}
    return sorted(unique.items(), key=lambda kv: len(kv[0]), reverse=True)


def portable(value: Any) -> Any:
    """``value`` with every absolute path under a data root, the cache, the repository or the home
    folder made relative to it; strings, mappings, lists and tuples are rewritten recursively."""
    return _rewrite(value, _aliases())


def _rewrite(value: Any, aliases: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for prefix, alias in aliases:
            if prefix in value:
                value = value.replace(prefix, alias)
        return value
    if isinstance(value, Path):
        return _rewrite(str(value), aliases)
    if isinstance(value, Mapping):
        return {k: _rewrite(v, aliases) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_rewrite(v, aliases) for v in value)
    return value
