"""Which protocol difference separates our evaluation from the DC/DSA/DM reference's?

    python -m ddlib.tools.eval_protocol_check                       # Colored MNIST 5 %, IPC 10, random real
    python -m ddlib.tools.eval_protocol_check --width 32 --epochs 150 --models 3
    python -m ddlib.tools.eval_protocol_check --source dm --profile quick   # a quick DM set instead
    python -m ddlib.tools.eval_protocol_check --variants ours,flip          # only some rows

Takes ONE set of images (default: ``--ipc`` random real training images per class,
:func:`ddlib.experiments.grid.random_real_set`; ``--source dm`` distils one with the
profile's DM settings) and judges it with our evaluation protocol and with each candidate
difference switched to the reference implementation's, ``--models`` fresh ConvNets per row (the
same model seeds, shuffles and augmentation streams in every row, so rows are paired). Prints a
table of mean and sample standard deviation (ddof = 1) of the test accuracy, overall / aligned /
conflicting.

The rows (each a switch of one difference to the reference's; ``reference`` = all of them):

* ``ours``      — today's protocol (:mod:`ddlib.training.loop`, the data set's DSA strategy);
* ``flip``      — the DSA strategy with ``flip`` (the reference uses
                  ``color_crop_cutout_flip_scale_rotate`` for every data set, digits included;
                  ours drops the flip for digits);
* ``schedule``  — the reference's loop bookkeeping: ``epochs + 1`` training epochs, and the
                  learning rate × 0.1 after epoch ``epochs // 2 + 1`` by building a *new* SGD
                  optimiser (the momentum buffer restarts) instead of a scheduler step at ``epochs // 2``;
* ``corners``   — DSA scale / rotate resampled with ``align_corners=False`` (the reference calls
                  ``affine_grid`` / ``grid_sample`` with PyTorch's defaults; ours uses ``True``). A
                  control: for a linear map about the centre of a *square* image both conventions
                  sample the same pixel positions, so this row equals ``ours`` up to float rounding;
* ``reference`` — all three.

Measured (2-core CPU; Colored MNIST 5 %, IPC 10, ConvNet width 32, 150 epochs, 3 models per row,
test accuracy %, mean ± sample std):

=========  ==============  ==============  ==============  ==============  ==============
set        ours            flip            schedule        corners         reference
=========  ==============  ==============  ==============  ==============  ==============
random     27.76 ± 1.06    24.70 ± 0.43    27.77 ± 1.11    27.75 ± 1.08    24.66 ± 0.50
DM quick   22.76 ± 2.04    21.09 ± 0.38    —               —               —
=========  ==============  ==============  ==============  ==============  ==============

The flip alone accounts for the gap (−3.1 and −1.7 points); the schedule's bookkeeping and the
resampling convention move nothing (±0.02).

Nothing here is cached and nothing is written: a diagnostic, not a result of the paper. The
``corners`` row swaps the loop's DSA class for the duration of the row (a local patch of this tool;
the library has no such switch).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import dataclass, replace
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ddlib.core import env
import ddlib.training.loop as loop_module
from ddlib.augment import DSA
from ddlib.core.device import pick_device
from ddlib.datasets import BiasedDataset, load_dataset
from ddlib.models import ConvNetConfig
from ddlib.training.evaluation import EvalResult, EvalSettings, evaluate_images
from ddlib.training.objectives import CrossEntropy, SupervisedRun, TrainConfig, TrainingSetup

REFERENCE_STRATEGY = "color_crop_cutout_flip_scale_rotate"
VARIANTS = ("ours", "flip", "schedule", "corners", "reference")


class ReferenceScheduleRun(SupervisedRun):
    """Cross-entropy with the reference's schedule: after epoch index ``drop_after`` (0-based) the
    learning rate is multiplied by 0.1 in a newly built SGD optimiser (fresh momentum buffer)."""

    def __init__(self, setup: TrainingSetup, net: torch.nn.Module, drop_after: int):
        super().__init__(net, setup.sgd(net.parameters()))
        self.setup, self.drop_after, self.epoch = setup, drop_after, 0

    def end_epoch(self) -> None:
        if self.epoch == self.drop_after:
            c = self.setup.config
            self.optimizer = torch.optim.SGD(self.net.parameters(), lr=c.lr * 0.1, momentum=c.momentum,
                                             weight_decay=c.weight_decay)
        self.epoch += 1


@dataclass(frozen=True)
class ReferenceScheduleCE:
    """The training objective of the ``schedule`` row; ``nominal_epochs`` is the reference's
    ``epoch_eval_train`` (the loop runs one more epoch than that)."""

    nominal_epochs: int

    def start(self, setup: TrainingSetup, labels: torch.Tensor) -> ReferenceScheduleRun:
        return ReferenceScheduleRun(setup, setup.build_convnet("model-init"), self.nominal_epochs // 2 + 1)

    def cache_config(self) -> dict[str, Any]:
        return {"kind": "reference-schedule-cross-entropy", "nominal_epochs": self.nominal_epochs}


class DefaultCornersDSA(DSA):
    """Our DSA with the scale / rotate grid built and sampled with ``align_corners=False``."""

    @staticmethod
    def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False)


@contextlib.contextmanager
def loop_dsa_class(cls: type[DSA]) -> Iterator[None]:
    saved = loop_module.DSA
    loop_module.DSA = cls
    try:
        yield
    finally:
        loop_module.DSA = saved


def variant_settings(name: str, dataset: BiasedDataset, train: TrainConfig, n_models: int, seed: int
                     ) -> tuple[BiasedDataset, EvalSettings, type[DSA]]:
    """The data set (its DSA strategy), the settings and the DSA class of one row."""
    flip = name in ("flip", "reference")
    schedule = name in ("schedule", "reference")
    corners = name in ("corners", "reference")
    ds = replace(dataset, dsa_strategy=REFERENCE_STRATEGY) if flip else dataset
    settings = EvalSettings(replace(train, epochs=train.epochs + 1) if schedule else train, n_models, seed,
                            objective=ReferenceScheduleCE(train.epochs) if schedule else CrossEntropy(),
                            batched=False)
    return ds, settings, DefaultCornersDSA if corners else DSA


def summary(result: EvalResult) -> dict[str, float]:
    row: dict[str, float] = {}
    for field in ("overall", "aligned", "conflicting"):
        values = np.array([getattr(a, field) for a in result.per_model]) * 100
        row[field] = float(values.mean())
        row[f"{field}_std"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
    row["per_model"] = ", ".join(f"{100 * a.overall:.1f}" for a in result.per_model)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="colored_mnist")
    parser.add_argument("--ratio", type=float, default=0.05, help="bias-conflicting ratio of the training split")
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--source", choices=("random", "dm"), default="random",
                        help="random real images per class, or a DM set distilled with --profile's settings")
    parser.add_argument("--profile", default="quick", help="profile of --source dm")
    parser.add_argument("--width", type=int, default=32, help="ConvNet width of the evaluated models")
    parser.add_argument("--epochs", type=int, default=150, help="evaluation epochs (the reference's epoch_eval_train)")
    parser.add_argument("--models", type=int, default=3, help="models per row")
    parser.add_argument("--seed", type=int, default=0, help="seed of the set and of the models")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated rows of {VARIANTS}")
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    env.absolutize_at_entry("python -m ddlib.tools.eval_protocol_check")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {VARIANTS}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)

    dataset = load_dataset(args.dataset, args.ratio)
    if args.source == "random":
        from ddlib.experiments.grid import random_real_set
        syn = random_real_set(dataset, args.ipc, args.seed)
    else:
        from ddlib.distill.registry import distill
        from ddlib.profiles import get_profile
        syn = distill("dm", dataset, args.ipc, get_profile(args.profile), device=device)
    train = TrainConfig(epochs=args.epochs, model=ConvNetConfig(width=args.width))
    print(f"{dataset.display_name}: {args.source} set, IPC {args.ipc} ({len(syn.images)} images); "
          f"ConvNet width {args.width}, {args.epochs} epochs, {args.models} models per row, device {device}; "
          f"our DSA strategy {dataset.dsa_strategy!r}")
    rows = []
    for name in variants:
        ds, settings, dsa_class = variant_settings(name, dataset, train, args.models, args.seed)
        t0 = time.perf_counter()
        with loop_dsa_class(dsa_class):
            result = evaluate_images(ds, syn.images, syn.labels, settings, device, progress=False, desc=name)
        rows.append({"variant": name, **summary(result), "seconds": time.perf_counter() - t0})
        r = rows[-1]
        print(f"{name:<10} {r['overall']:6.2f} ± {r['overall_std']:5.2f}   aligned {r['aligned']:6.2f}   "
              f"conflicting {r['conflicting']:6.2f} ± {r['conflicting_std']:5.2f}   [{r['per_model']}]  "
              f"{r['seconds']:.0f} s", flush=True)
    print("\n| variant | accuracy % (mean ± sample std) | aligned % | conflicting % | per model |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['overall']:.2f} ± {r['overall_std']:.2f} | {r['aligned']:.2f} | "
              f"{r['conflicting']:.2f} ± {r['conflicting_std']:.2f} | {r['per_model']} |")


if __name__ == "__main__":
    main()
