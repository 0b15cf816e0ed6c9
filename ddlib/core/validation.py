"""Value checks for the configuration dataclasses, driven by their declared field types.

Every frozen config calls :func:`check_config` from ``__post_init__``. It checks each field
against its type annotation and then against the per-field rules the class passes, so a bad
value fails when the config is built and the error names ``Class.field`` and what was expected.
Otherwise the failure comes many calls later as a reshape error or a silently wrong run.

The annotations understood: ``int``, ``float`` (an int is accepted), ``bool`` (only ``True``/
``False``; an int is not a bool and a bool is not an int here), ``str``, ``X | None``,
``tuple[T, ...]``, ``tuple[A, B]``, ``Literal``, nested dataclasses, ``Any`` and other classes
(checked with ``isinstance``). A string where a tuple is declared is refused with a hint: the
string ``"colored_mnist"`` would otherwise be read letter by letter.

Rules: :class:`Range` (bounds, inclusive unless said), :class:`NonEmpty` (a tuple with at least
one entry), :class:`OneOf` (a fixed set of choices). Each applies to a field's value, or to each
entry of a tuple field.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing
from typing import Any


class ConfigError(ValueError):
    """A configuration value is of the wrong type or out of range; the message names the field."""


@dataclasses.dataclass(frozen=True)
class Range:
    """``low ≤ value ≤ high`` (``None``: unbounded); ``low_open``/``high_open`` make a bound strict."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    allow_inf: bool = False  # +inf accepted (KDE's τ = inf: uniform weights)

    def problem(self, value: Any) -> str | None:
        if isinstance(value, float) and math.isnan(value):
            return f"a number, got {value!r}"
        if isinstance(value, float) and math.isinf(value) and not (self.allow_inf and value > 0):
            return f"a finite number, got {value!r}"
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if too_low or too_high:
            return f"{self.describe()}, got {value!r}"
        return None

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '≥'} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '≤'} {self.high:g}")
        return "a value " + " and ".join(parts) + (" (or math.inf)" if self.allow_inf else "")


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
AT_LEAST_ONE = Range(1)
FRACTION = Range(0, 1, low_open=True)          # (0, 1]
MOMENTUM = Range(0, 1, high_open=True)         # [0, 1)


@dataclasses.dataclass(frozen=True)
class NonEmpty:
    """A tuple field that must hold at least one entry."""

    def problem(self, value: Any) -> str | None:
        return "at least one entry, got an empty list" if value is not None and len(value) == 0 else None


@dataclasses.dataclass(frozen=True)
class OneOf:
    choices: tuple[Any, ...]

    def problem(self, value: Any) -> str | None:
        return None if value in self.choices else f"one of {self.choices}, got {value!r}"


Rule = Range | NonEmpty | OneOf


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "None"
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return str(hint).replace("typing.", "")


def type_problem(value: Any, hint: Any) -> str | None:
    """Why ``value`` does not match the annotation ``hint`` (None: it matches)."""
    if hint is Any or hint is typing.Any:
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if any(type_problem(value, a) is None for a in args):
            return None
        return f"{' or '.join(_type_name(a) for a in args)}, got {value!r} ({type(value).__name__})"
    if origin is typing.Literal:
        return None if value in args else f"one of {args}, got {value!r}"
    if origin is tuple:
        if isinstance(value, str):
            return (f"a list of {_type_name(args[0]) if args else 'values'}, got the string {value!r} "
                    f"(write [{_entry_example(value, args[0] if args else Any)}] for a single entry)")
        if not isinstance(value, tuple):
            return f"a list ({_type_name(hint)}), got {value!r} ({type(value).__name__})"
        if len(args) == 2 and args[1] is Ellipsis:
            entries = [(v, args[0]) for v in value]
        elif args:
            if len(args) != len(value):
                return f"{len(args)} entries ({_type_name(hint)}), got {len(value)}: {value!r}"
            entries = list(zip(value, args))
        else:
            entries = []
        for i, (v, h) in enumerate(entries):
            problem = type_problem(v, h)
            if problem is not None:
                return f"entry {i}: {problem}"
        return None
    if origin is not None:  # dict[...], Callable[...]: only the container type
        return None if isinstance(value, origin) else f"{_type_name(hint)}, got {type(value).__name__}"
    if hint is bool:
        return None if isinstance(value, bool) else f"True or False, got {value!r} ({type(value).__name__})"
    if hint is int:  # numpy integers too (values read from tables)
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        return None if ok else f"a whole number, got {value!r} ({type(value).__name__})"
    if hint is float:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        return None if ok else f"a number, got {value!r} ({type(value).__name__})"
    if isinstance(hint, type):
        try:
            return None if isinstance(value, hint) else f"a {hint.__name__}, got {value!r} ({type(value).__name__})"
        except TypeError:  # a non-runtime protocol: not checkable here
            return None
    return None


def _entry_example(text: str, hint: Any) -> str:
    """How the one entry ``text`` is written in a list of ``hint``: ``1`` for an int list, ``'DM'`` for str."""
    for kind in (int, float):
        if hint is kind:
            try:
                return repr(kind(text))
            except ValueError:
                return "..."
    return repr(text)


def check_config(obj: Any, **rules: Rule | tuple[Rule, ...]) -> None:
    """Check every field of the dataclass ``obj`` against its annotation and ``rules[field]``.

    Raises :class:`ConfigError` naming ``Class.field`` and what it expects."""
    cls = type(obj)
    hints = _hints(cls)
    unknown = set(rules) - {f.name for f in dataclasses.fields(obj)}
    if unknown:  # a typo in a rule would silently check nothing
        raise TypeError(f"check_config: {cls.__name__} has no field(s) {sorted(unknown)}")
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        hint = hints.get(field.name, Any)
        problem = type_problem(value, hint)
        if problem is None and value is not None:
            for rule in _as_tuple(rules.get(field.name, ())):
                problem = _rule_problem(rule, value)
                if problem is not None:
                    break
        if problem is not None:
            raise ConfigError(f"{cls.__name__}.{field.name} expects {problem}")


def _as_tuple(rule: Rule | tuple[Rule, ...]) -> tuple[Rule, ...]:
    return rule if isinstance(rule, tuple) else (rule,)


def _rule_problem(rule: Rule, value: Any) -> str | None:
    if isinstance(rule, NonEmpty) or not isinstance(value, tuple):
        return rule.problem(value)
    for i, v in enumerate(value):  # a value rule on a tuple field: every entry
        problem = rule.problem(v) if not isinstance(v, tuple) else None
        if problem is not None:
            return f"entry {i}: {problem}"
    return None


def coerce(value: Any, hint: Any) -> Any:
    """``value`` as a notebook parameter or a YAML/JSON override gives it, turned into the declared
    type where that is unambiguous: lists become tuples (nested too), an int becomes a float where a
    float is declared. Anything else is returned as it is, for :func:`check_config` to judge."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        for a in args:
            if a is not type(None):
                converted = coerce(value, a)
                if type_problem(converted, a) is None:
                    return converted
        return value
    if origin is tuple and isinstance(value, (list, tuple)):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0]) for v in value)
        if args and len(args) == len(value):
            return tuple(coerce(v, a) for v, a in zip(value, args))
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return value  # a mapping for a nested config: with_overrides walks it by field
    return value


def field_hint(cls: type, name: str) -> Any:
    """The resolved annotation of field ``name`` of dataclass ``cls``."""
    return _hints(cls).get(name, Any)

