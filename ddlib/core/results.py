"""Result tables with provenance: what every saved table records, and where it is written.

Tables are written beside the figures (``figures/<profile>/``) as CSV plus a JSON of provenance:
the whole profile, device, versions, git commit, whether the code differed from it, and time.

The code's version comes from git in a source checkout; in a copy installed into site-packages (the
Colab setup cell's ``pip install git+…``) from the installed distribution: its version and, per PEP 610
(``direct_url.json``), the URL pip installed it from and the commit of a ``git+`` install.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import platform
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ddlib.core.cache import _jsonable, atomic_write, atomic_write_json
from ddlib.core.paths import portable
from ddlib.core.plots import figures_dir, in_source_checkout, repo_root

DISTRIBUTION = "ddlib"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def git_commit() -> str | None:
    """HEAD's hash, or None outside a git checkout."""
    if not in_source_checkout(repo_root()):
        return None  # installed: a git repository around site-packages (a venv in a checkout) is not ddlib's
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _cell_sources(text: str) -> list[str]:
    cells = json.loads(text).get("cells", [])
    return ["".join(c.get("source", "")) for c in cells]


def git_code_changed() -> bool | None:
    """Whether the code differs from HEAD: a library file, or a notebook's cell *sources* (executed
    outputs do not count). A result written then does not come from HEAD's code alone. None outside a
    git checkout."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True, timeout=10)

    try:
        out = git("diff", "--name-only", "HEAD", "--", "ddlib", "notebooks")
        if out.returncode != 0:
            return None
        for path in out.stdout.split():
            if not path.endswith(".ipynb"):
                return True
            before = git("show", f"HEAD:{path}")
            now = repo_root() / path
            if before.returncode != 0 or not now.exists() or \
                    _cell_sources(before.stdout) != _cell_sources(now.read_text()):
                return True
        return False
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def installed_distribution(dist: importlib.metadata.Distribution | None = None) -> dict[str, Any]:
    """What the installed distribution (default: ddlib's) says of its code: ``version`` and, from PEP 610
    ``direct_url.json``, the ``url`` pip installed it from, and ``vcs``/``commit`` (+ ``requested_revision``)
    for a ``pip install git+…``. Empty where ddlib has no distribution metadata (``PYTHONPATH`` alone)."""
    if dist is None:
        try:
            dist = importlib.metadata.distribution(DISTRIBUTION)
        except importlib.metadata.PackageNotFoundError:
            return {}
    info: dict[str, Any] = {"version": dist.version}
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:  # a damaged file says nothing; the version still identifies a release
        direct = {}
    if direct.get("url"):
        info["url"] = direct["url"]
    vcs = direct.get("vcs_info") or {}
    if vcs:
        info.update(vcs=vcs.get("vcs"), commit=vcs.get("commit_id"),
                    **({"requested_revision": vcs["requested_revision"]} if vcs.get("requested_revision") else {}))
    if (direct.get("dir_info") or {}).get("editable"):
        info["editable"] = True
    return info


def code_version(dist: importlib.metadata.Distribution | None = None) -> dict[str, Any]:
    """Which code writes a result: ``source`` ("checkout" or "installed"), ``git_commit`` and
    ``uncommitted_code_changes``, plus what the installed distribution says (:func:`installed_distribution`).

    In a checkout the commit comes from git. Installed, it is the commit pip recorded for a ``git+``
    install, which is exactly the code installed (no uncommitted changes); for any other install
    (a wheel, a folder) there is no commit and the version and URL are what is known."""
    installed = installed_distribution(dist)
    if in_source_checkout(repo_root()):
        return {"source": "checkout", "git_commit": git_commit(), "uncommitted_code_changes": git_code_changed(),
                **({"version": installed["version"]} if "version" in installed else {})}
    commit = installed.get("commit") if installed.get("vcs") == "git" else None
    return {"source": "installed", "git_commit": commit, "uncommitted_code_changes": False if commit else None,
            **installed}


def run_provenance(profile: Any, device: torch.device, **extra: Any) -> dict[str, Any]:
    """What every saved result records: profile (all settings), seed, device, versions, commit, time.
    ``code`` says where the commit comes from (:func:`code_version`)."""
    code = code_version()
    return {"profile": asdict(profile) if hasattr(profile, "__dataclass_fields__") else profile,
            "device": str(device), "torch": torch.__version__, "python": platform.python_version(),
            "git_commit": code.pop("git_commit"), "uncommitted_code_changes": code.pop("uncommitted_code_changes"),
            "code": code, "written": _now(), **extra}


def save_table(table: pd.DataFrame, name: str, profile_name: str, provenance: dict[str, Any]) -> Path:
    """Write ``figures/<profile>/<name>.csv`` and ``<name>.provenance.json``; return the CSV path.

    Paths of this machine in either (data roots, the cache) are written relative to their root
    (:func:`ddlib.core.paths.portable`): the files are committed and read elsewhere."""
    folder = figures_dir(profile_name)
    path = folder / f"{name}.csv"
    text_columns = [c for c in table.columns
                    if pd.api.types.is_object_dtype(table[c]) or pd.api.types.is_string_dtype(table[c])]
    table = table.assign(**{c: table[c].map(portable) for c in text_columns}) if text_columns else table
    atomic_write(path, lambda p: table.to_csv(p, index=False))
    atomic_write_json(folder / f"{name}.provenance.json", portable(_jsonable(provenance)))
    return path


def skipped_note(name: str, error: Exception) -> str:
    """The markdown a notebook shows for a data set whose source is missing (never a silent skip);
    machine paths in the message are written relative to their root."""
    return f"**{name} skipped: its raw data is not available here.**\n\n```\n{portable(str(error))}\n```"


def styled(table: pd.DataFrame, precision: int = 1):
    """A table for display: accuracies with ``precision`` decimals, ratios as percentages, no index."""
    pct_cols = [c for c in table.columns if c in ("conflict_ratio", "relative_drop")]
    int_cols = [c for c in table.columns if c in ("ipc", "n_models")]
    fmt = {c: "{:.1%}" for c in pct_cols}
    fmt.update({c: (lambda v: "" if pd.isna(v) else f"{int(v)}") for c in int_cols})
    return (table.style.format(precision=precision, na_rep="—").format(fmt, na_rep="—").hide(axis="index"))
