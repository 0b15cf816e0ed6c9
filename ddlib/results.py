"""Cached evaluations and result tables with provenance.

An evaluation (n fresh models trained on a synthetic set, or on the full training set) is an
expensive artifact too: it is cached under the configuration that produced it, so rerunning a
notebook reuses it. Tables are written beside the figures as CSV plus a JSON of provenance.
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

from .cache import ArtifactDir, _jsonable, atomic_write, atomic_write_json
from .datasets import BiasedDataset
from .distill.synthetic import SyntheticSet
from .evaluation import Accuracy, EvalResult, evaluate_full_data, evaluate_images
from .plots import figures_dir, repo_root
from .training import TrainConfig


def _load_eval(artifact: ArtifactDir) -> EvalResult | None:
    if not artifact.is_complete():
        return None
    payload = json.loads(artifact.file("result.json").read_text())
    return EvalResult(tuple(Accuracy(**a) for a in payload["per_model"]))


def _store_eval(artifact: ArtifactDir, result: EvalResult, provenance: dict[str, Any]) -> None:
    text = json.dumps(result.to_dict(), indent=2)
    artifact.commit({"result.json": lambda p: p.write_text(text)}, provenance)


def synthetic_fingerprint(syn: SyntheticSet) -> str:
    """Content hash of a synthetic set (its images and labels)."""
    import hashlib
    digest = hashlib.sha256(syn.images.detach().cpu().contiguous().numpy().tobytes())
    digest.update(syn.labels.cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def evaluate_synthetic_cached(dataset: BiasedDataset, syn: SyntheticSet, config: TrainConfig, n_models: int,
                              seed: int, device: torch.device, progress: bool = True) -> EvalResult:
    """:func:`evaluate_images` on a synthetic set, cached by (data set, synthetic content, config, seed)."""
    artifact = ArtifactDir("evaluations/synthetic", {"dataset": dataset.fingerprint,
                                                     "synthetic": synthetic_fingerprint(syn), "config": config,
                                                     "n_models": n_models, "seed": seed, "format": 1})
    cached = _load_eval(artifact)
    if cached is not None:
        return cached
    result = evaluate_images(dataset, syn.images, syn.labels, config, n_models, seed, device, progress,
                             desc=f"evaluate {syn.method} ipc={syn.ipc}")
    _store_eval(artifact, result, {"dataset": dataset.display_name, "method": syn.method, "ipc": syn.ipc,
                                   "device": str(device), "finished": _now()})
    return result


def evaluate_full_data_cached(dataset: BiasedDataset, config: TrainConfig, n_models: int, seed: int,
                              device: torch.device, max_samples: int | None = None,
                              progress: bool = True) -> EvalResult:
    """:func:`evaluate_full_data`, cached by (data set, config, seed, subset size)."""
    artifact = ArtifactDir("evaluations/full", {"dataset": dataset.fingerprint, "config": config,
                                                "n_models": n_models, "seed": seed, "max_samples": max_samples,
                                                "format": 1})
    cached = _load_eval(artifact)
    if cached is not None:
        return cached
    result = evaluate_full_data(dataset, config, n_models, seed, device, progress, max_samples)
    _store_eval(artifact, result, {"dataset": dataset.display_name, "device": str(device), "finished": _now()})
    return result


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
    """Write ``figures/<profile>/<name>.csv`` and ``<name>.provenance.json``; return the CSV path."""
    folder = figures_dir(profile_name)
    path = folder / f"{name}.csv"
    atomic_write(path, lambda p: table.to_csv(p, index=False))
    atomic_write_json(folder / f"{name}.provenance.json", _jsonable(provenance))
    return path


def styled(table: pd.DataFrame, precision: int = 1):
    """A table for display: accuracies with ``precision`` decimals, ratios as percentages, no index."""
    pct_cols = [c for c in table.columns if c in ("conflict_ratio", "relative_drop")]
    int_cols = [c for c in table.columns if c in ("ipc", "n_models")]
    fmt = {c: "{:.1%}" for c in pct_cols}
    fmt.update({c: (lambda v: "" if pd.isna(v) else f"{int(v)}") for c in int_cols})
    return (table.style.format(precision=precision, na_rep="—").format(fmt, na_rep="—").hide(axis="index"))
