"""Notebook parameters that papermill injected but the notebook does not declare.

papermill (``-p name value``, ``-y``, ``execute_notebook(parameters=...)``) adds a cell headed
``# Parameters`` after the cell tagged ``parameters``, and only *warns* about a name that cell does
not assign: the run then finishes with exit status 0 and the misspelt setting silently ignored.
:func:`check_kernel_parameters` turns that into an error. It reads the kernel's input history
(IPython's ``In``), where the injected cell directly follows the notebook's own parameters cell,
and compares the names the two assign, and the types of values where the notebook's default is a
literal bool, number or string (``run_validation: "no"`` would otherwise count as true). In a notebook run by hand or by nbval there is no injected
cell and nothing to check.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

from ddlib.core.validation import ConfigError

INJECTED_HEADER = "# Parameters"  # papermill's Python translator starts its cell with this comment


_UNREADABLE = object()  # a value that is not a Python literal (an expression): its type is not checked


def assignments(source: str) -> dict[str, Any]:
    """The names a cell assigns at its top level (``a = 1``, ``a: int = 1``, ``a = b = 2``), each with
    its value where that is a literal (else a marker that skips the type check)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return {}
    found: dict[str, Any] = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
        if not targets:
            continue
        try:
            value = ast.literal_eval(node.value)
        except (ValueError, SyntaxError, TypeError):
            value = _UNREADABLE
        found.update((t.id, value) for t in targets if isinstance(t, ast.Name))
    return found


def assigned_names(source: str) -> set[str]:
    return set(assignments(source))


def type_mismatches(declared: dict[str, Any], injected: dict[str, Any]) -> list[str]:
    """Injected values whose type contradicts a declared literal default: ``True``/``False`` for a bool
    default, a number for a number, a string for a string (a ``None`` default takes anything: the
    profile's configs check those values)."""
    problems = []
    for name, default in declared.items():
        if name not in injected or default is None or default is _UNREADABLE or injected[name] is _UNREADABLE:
            continue
        value = injected[name]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
            expected = "True or False"
        elif isinstance(default, (int, float)):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            expected = "a number"
        elif isinstance(default, str):
            ok = isinstance(value, str)
            expected = "a string"
        else:
            continue
        if not ok:
            problems.append(f"{name} expects {expected} (its default is {default!r}), got {value!r}")
    return problems


def undeclared_parameters(history: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(undeclared, declared)`` for the last papermill-injected cell in ``history`` (the kernel's
    executed cell sources, in order): the names it assigns that the cell before it (the notebook's
    parameters cell) does not. No injected cell: ``([], [])``."""
    for i in range(len(history) - 1, 0, -1):
        if history[i].lstrip().startswith(INJECTED_HEADER):
            declared = assigned_names(history[i - 1])
            return sorted(assigned_names(history[i]) - declared), sorted(declared)
    return [], []


def injected_type_mismatches(history: Sequence[str]) -> list[str]:
    """:func:`type_mismatches` of the last injected cell in ``history`` against the cell before it."""
    for i in range(len(history) - 1, 0, -1):
        if history[i].lstrip().startswith(INJECTED_HEADER):
            return type_mismatches(assignments(history[i - 1]), assignments(history[i]))
    return []


def check_kernel_parameters() -> None:
    """Raise :class:`ConfigError` when run in an IPython kernel whose injected parameters name one the
    notebook's parameters cell does not declare; elsewhere (a script, a test) do nothing."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    history = getattr(shell, "user_ns", {}).get("In") if shell is not None else None
    if not isinstance(history, list):
        return
    undeclared, declared = undeclared_parameters(history)
    if undeclared:
        raise ConfigError(f"notebook parameter(s) {', '.join(undeclared)} are not declared in this notebook's "
                          f"parameters cell (papermill only warns about them); it takes: {', '.join(declared)}")
    mismatches = injected_type_mismatches(history)
    if mismatches:
        raise ConfigError("notebook parameter " + "; ".join(mismatches))
