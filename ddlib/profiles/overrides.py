"""Changing single settings of a profile by dotted path: ``--set kde_method.kde.tau=0.05`` on the command
line, keyword parameters in a notebook's ``parameters`` cell, and :func:`get_profile` that applies them."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import replace
from typing import Any

from ddlib.core import env
from ddlib.core.notebook_parameters import check_kernel_parameters
from ddlib.core.validation import ConfigError, coerce, field_hint
from ddlib.profiles.profile import Profile, network_paths, profile_with_network
from ddlib.profiles.table import PROFILES

# Settings that were once read from another place: an override of one names the place that is read.
MOVED = {"dm": "kde_method.dm (DM's settings; every DM run reads them, the vanilla baseline at "
               "kde_method.vanilla_dm_lr)"}


def parse_override(text: str) -> tuple[str, Any]:
    """``PATH=VALUE`` → ``(PATH, value)``: the value as JSON where it parses (numbers, lists, true/false,
    null), else the text itself. A ``ValueError`` without ``=``."""
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise ValueError(f"--set expects PATH=VALUE (e.g. kde_method.kde.tau=0.1), got {text!r}")
    try:
        return path.strip(), json.loads(value)
    except json.JSONDecodeError:
        return path.strip(), value


def with_overrides(config: Any, overrides: dict[str, Any]) -> Any:
    """``config`` with the fields named by dotted paths replaced (``{"kde_method.kde.tau": 0.05}``).

    ``None`` values are skipped, so a notebook's ``parameters`` cell can pass its parameters straight
    through (``None`` = keep the profile's value). Values are turned into the field's declared type
    where that is unambiguous (lists become tuples, whole numbers floats where a float is declared,
    :func:`ddlib.core.validation.coerce`) and then checked by the config itself; an unknown field, or
    a value of the wrong type or out of range, is a :class:`ConfigError` naming the dotted path.

    On a :class:`Profile`, ``model`` is the network of every stage not in ``own_networks``; an override
    inside a stage's network makes that network the stage's own (:mod:`ddlib.profiles.profile`)."""
    if not isinstance(config, Profile):
        return _with_overrides(config, overrides, "")
    paths = [p for p, _ in network_paths(config) if p != "model"]
    own = [p for p in paths for path, v in overrides.items()
           if v is not None and (path == p or path.startswith(p + "."))]
    if own:
        config = replace(config, own_networks=tuple(dict.fromkeys((*config.own_networks, *own))))
    return profile_with_network(_with_overrides(config, overrides, ""))


def _with_overrides(config: Any, overrides: dict[str, Any], prefix: str) -> Any:
    for path, value in overrides.items():
        if value is None:
            continue
        full = prefix + path
        head, _, rest = path.partition(".")
        if not dataclasses.is_dataclass(config) or head not in {f.name for f in dataclasses.fields(config)}:
            if not prefix and head in MOVED and isinstance(config, Profile):
                raise ConfigError(f"setting {full!r}: nothing reads {head!r}; the setting that is read is "
                                  f"{MOVED[head]}: set {MOVED[head].split()[0]}{'.' + rest if rest else ''}")
            known = ", ".join(f.name for f in dataclasses.fields(config)) if dataclasses.is_dataclass(config) else "none"
            raise ConfigError(f"unknown setting {full!r} for {type(config).__name__}; its fields: {known}")
        if rest:
            new = _with_overrides(getattr(config, head), {rest: value}, f"{prefix}{head}.")
        else:
            new = coerce(value, field_hint(type(config), head))
        try:
            config = replace(config, **{head: new})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"setting {full!r} = {value!r}: {exc}") from None
    return config


def get_profile(name: str | None = None, overrides: dict[str, Any] | None = None) -> Profile:
    """The named profile (``None`` means ``$DDLIB_PROFILE`` or ``quick``), with ``overrides``
    applied by :func:`with_overrides`.

    Every notebook builds its profile here first, so this is also where a notebook run by papermill
    with a parameter its ``parameters`` cell does not declare fails (papermill itself only warns;
    :mod:`ddlib.core.notebook_parameters`)."""
    check_kernel_parameters()
    origin = "the profile argument" if name else f"${env.PROFILE_ENV}"
    name = name or env.profile() or "quick"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r} (from {origin}); choose one of {', '.join(PROFILES)}")
    return with_overrides(PROFILES[name], overrides or {})
