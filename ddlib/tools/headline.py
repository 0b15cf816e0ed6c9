"""The paper's headline check in one command: DM vs DM + KDE on Colored MNIST 5 %, IPC 50.

    python -m ddlib.tools.headline                      # the ``headline`` profile (one GPU)
    ./reproduce.sh --headline                           # the same, in the project's environment
    python -m ddlib.tools.headline --profile smoke --device cpu   # seconds: checks it runs

Trains the SupCon surrogate, distils vanilla DM and DM + KDE (the profile's ``kde_method``
settings), evaluates both with the profile's evaluation protocol and prints our accuracy beside
the paper's (:func:`ddlib.reference.reported_accuracy`), with the device's name and the wall time
of every stage. Writes ``figures/<profile>/headline.csv`` and its provenance JSON. Every stage is
cached, so a rerun after an interruption only does what is missing. ``--set path=value``
overrides a profile field (e.g. ``--set kde_method.dm.precision=bf16``).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Any

import pandas as pd
import torch

from ddlib.core import env
from ddlib.core.device import pick_device
from ddlib.core.results import run_provenance, save_table
from ddlib.datasets import BiasedDataset, load_dataset
from ddlib.distill.registry import distill
from ddlib.kde_supcon.surrogate import train_surrogate
from ddlib.kde_supcon.weights import KDEWeights
from ddlib.profiles import Profile, get_profile, parse_override
from ddlib.reference import reported_accuracy
from ddlib.training.evaluation import evaluate_synthetic_cached

DATASET = "colored_mnist"
METHODS = (("DM", False), ("DM + KDE/SupCon", True))


def device_name(device: torch.device) -> str:
    """The card's name (CUDA) or the CPU and its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def run_headline(profile: Profile, device: torch.device, progress: bool = True,
                 dataset: BiasedDataset | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run the headline cell under ``profile``; returns the table and the timings (seconds)."""
    km = profile.kde_method
    ipc = max(km.ipcs)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    dataset = dataset if dataset is not None else load_dataset(DATASET, km.conflict_ratio)
    timings["data"] = time.perf_counter() - start
    t = time.perf_counter()
    surrogate = train_surrogate(dataset, km.surrogate, device, progress=progress)
    weighter = KDEWeights.from_surrogate(dataset, surrogate, km.kde)
    timings["surrogate"] = time.perf_counter() - t
    rows = []
    for method, weighted in METHODS:
        t = time.perf_counter()
        syn = distill("dm", dataset, ipc, km.dm_for(weighted), weighter if weighted else None, device, progress)
        timings[f"{method}: distil"] = time.perf_counter() - t
        t = time.perf_counter()
        result = evaluate_synthetic_cached(dataset, syn, profile.evaluation, device, progress)
        timings[f"{method}: evaluate"] = time.perf_counter() - t
        row = result.row()
        rows.append({"dataset": dataset.display_name, "conflict_ratio": km.conflict_ratio, "ipc": ipc,
                     "method": method, "acc": row["acc"], "acc_std": row["acc_std"], "aligned": row["aligned"],
                     "conflicting": row["conflicting"], "n_models": row["n_models"],
                     "paper": reported_accuracy(DATASET, km.conflict_ratio, ipc, method)})
    timings["total"] = time.perf_counter() - start
    return pd.DataFrame(rows), timings


def format_report(table: pd.DataFrame, timings: dict[str, float], name: str, profile: str) -> str:
    lines = [f"Headline check ({profile} profile) on {name}",
             f"{'method':<18} {'ours (%)':>14} {'aligned':>8} {'conflicting':>12} {'paper (%)':>10}"]
    for r in table.itertuples():
        paper = "—" if pd.isna(r.paper) else f"{r.paper:.1f}"
        lines.append(f"{r.method:<18} {r.acc:>7.1f} ± {r.acc_std:<4.1f} {r.aligned:>8.1f} {r.conflicting:>12.1f} "
                     f"{paper:>10}")
    lines.append("wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="headline", help="run profile (default: headline)")
    parser.add_argument("--device", default=None, help="torch device (default: $DDLIB_DEVICE, cuda when available)")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE",
                        help="override a profile field, e.g. kde_method.dm.precision=bf16 (repeatable)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    env.absolutize_at_entry("python -m ddlib.tools.headline")
    overrides = {}
    for item in args.set:
        try:
            path, value = parse_override(item)
        except ValueError as error:
            parser.error(str(error))
        overrides[path] = value
    profile = get_profile(args.profile, overrides)
    device = pick_device(args.device)
    name = device_name(device)
    table, timings = run_headline(profile, device, progress=not args.no_progress)
    print(format_report(table, timings, name, profile.name))
    path = save_table(table, "headline", profile.name,
                      run_provenance(profile, device, device_name=name, timings_s=timings, overrides=overrides,
                                     cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES")))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
