"""Which code computed an artifact: a fingerprint of the ddlib source behind it.

Every cached artifact declares the modules that compute it (the method's module, the weighter's,
the evaluation's ...). Its cache key holds :func:`code_fingerprint` of those modules and of every
``ddlib`` module they import, directly or through others, at the top or inside a function. So an
edit to the computation (the DM loss, the KDE bandwidth rule, a ConvNet layer) gives a new key and
a recomputed artifact, while an edit elsewhere (the report tool, a plot, another method) keeps the
key and the cached result.

What counts as an edit: each module is read as Python syntax with its docstrings removed
(``ast``), so comments, docstrings, blank lines and line wrapping do not count; a renamed variable
or a changed constant does. The syntax tree's form belongs to the Python minor version, so a new
Python may rebuild the cache once (it never serves a stale result).

Modules in :data:`NOT_NUMERIC` move bytes or show progress and cannot change a number (the cache
layer itself, environment parsing, progress bars, path rewriting, value checks that only refuse);
they and their imports are left out, so a better progress bar does not cost a cold run.

``$DDLIB_REUSE_STALE=1`` is the escape hatch for someone who knows an edit was cosmetic: a missing
artifact is then taken from an earlier build with the same configuration but other code, with a
warning that names it (see :class:`ddlib.core.cache.ArtifactDir`).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PACKAGE = "ddlib"
PACKAGE_DIR = Path(__file__).resolve().parents[1]

NOT_NUMERIC = frozenset({
    "ddlib.core.cache",            # keys and atomic files: a change to keys changes keys by itself
    "ddlib.core.code_identity",    # this module
    "ddlib.core.env",              # parses environment variables
    "ddlib.core.paths",            # rewrites paths for provenance
    "ddlib.core.progress",         # progress bars
    "ddlib.core.validation",       # refuses bad values (accepted values are in the keys already)
})


def module_name(obj: Any) -> str:
    """The dotted module name behind ``obj``: a module name, a module, a class or an instance."""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    cls = obj if isinstance(obj, type) else type(obj)
    return cls.__module__


def module_file(name: str, package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The source file of ddlib module ``name`` (``None`` for a name that is not a ddlib module)."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    parts = name.split(".")[1:]
    base = package_dir.joinpath(*parts) if parts else package_dir
    for candidate in (base.with_suffix(".py") if parts else None, base / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def code_fingerprint(*objects: Any, package_dir: Path = PACKAGE_DIR, length: int = 16) -> str:
    """Fingerprint of the modules behind ``objects`` and every ddlib module they import (see the
    module docstring). Raises :class:`ValueError` for an object outside ddlib: its code would not be
    tracked, so a key built from it could go stale."""
    roots = []
    for obj in objects:
        name = module_name(obj)
        if module_file(name, package_dir) is None:
            raise ValueError(f"{name!r} is not a ddlib module, so its code cannot be fingerprinted; declare the "
                             "ddlib module that computes the artifact")
        roots.append(name)
    digest = hashlib.sha256()
    for name in sorted(closure(roots, package_dir)):
        path = module_file(name, package_dir)
        stat = path.stat()
        digest.update(f"{name}\0{_module_record(str(path), stat.st_mtime_ns, stat.st_size, name)[0]}\n".encode())
    return digest.hexdigest()[:length]


def closure(roots: Iterable[str], package_dir: Path = PACKAGE_DIR) -> set[str]:
    """``roots`` and every ddlib module they import, transitively (:data:`NOT_NUMERIC` left out)."""
    seen: set[str] = set()
    todo = [r for r in roots if r not in NOT_NUMERIC]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name, package_dir)
        stat = path.stat()
        for imported in _module_record(str(path), stat.st_mtime_ns, stat.st_size, name)[1]:
            if imported not in seen and imported not in NOT_NUMERIC and module_file(imported, package_dir):
                todo.append(imported)
    return seen


@functools.lru_cache(maxsize=None)
def _module_record(path: str, mtime_ns: int, size: int, name: str) -> tuple[str, tuple[str, ...]]:
    """(digest of the module's syntax without docstrings, the ddlib modules it imports); memoised per
    file state, so an edited file is read again."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=path)
    imports = _imports(tree, name, Path(path).name == "__init__.py")
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and _has_docstring(node):
            node.body = node.body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest(), tuple(sorted(imports))


def _has_docstring(node: ast.AST) -> bool:
    body = getattr(node, "body", None)
    return bool(body) and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
        and isinstance(body[0].value.value, str)


def _imports(tree: ast.Module, name: str, is_package: bool) -> set[str]:
    """The ddlib modules ``tree`` imports: ``import ddlib.x``, ``from ddlib.x import y`` (``y`` too
    where it is a submodule) and relative imports."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[:len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}
