"""Result tables with provenance: what every saved table records, and where it is written.

Tables are written beside the figures (``figures/<profile>/``) as CSV plus a JSON of provenance:
the whole profile, device, versions, git commit, whether the code differed from it, and time.
"""

from __future__ import annotations

import datetime as _dt
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
from ddlib.core.plots import figures_dir, repo_root


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def git_commit() -> str | None:
    """HEAD's hash, or None outside a git checkout."""
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


def run_provenance(profile: Any, device: torch.device, **extra: Any) -> dict[str, Any]:
    """What every saved result records: profile (all settings), seed, device, versions, commit, time."""
    return {"profile": asdict(profile) if hasattr(profile, "__dataclass_fields__") else profile,
            "device": str(device), "torch": torch.__version__, "python": platform.python_version(),
            "git_commit": git_commit(), "uncommitted_code_changes": git_code_changed(), "written": _now(), **extra}


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
