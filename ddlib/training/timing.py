"""Two small timings behind the evaluation protocol's CPU settings.

* ``full-data``: seconds per epoch of the quick profile's full-data network (ConvNet-3 width 32,
  batch 128, DSA) on all 60,000 Colored MNIST 5 % training images, and where the validation
  accuracy plateaus (the test split stands in when the data set has no validation split yet, for
  this timing only; the output says so)::

      PYTHONPATH=. DDLIB_OFFLINE=1 python -m ddlib.training.timing full-data --max-epochs 8 --patience 2

* ``batched``: 3 evaluation networks trained one after another vs. at once
  (``EvalSettings(batched=True)``, vmap) on a synthetic set of 100 images, 150 epochs, batch 256
  (the quick evaluation)::

      PYTHONPATH=. DDLIB_OFFLINE=1 python -m ddlib.training.timing batched --threads 2

Measured on 2026-11-28 on a 2-core CPU shared with other jobs (load 3-13, so wall times swing;
CPU seconds are the steadier figure), Colored MNIST 5 % with no validation split yet, so the
10,000-image test split stood in for the validation split in this timing only:

* one epoch on all 60,000 training images (469 batches of 128, DSA): 36-43 s wall when the two
  cores were free (epoch 4: 43.3 s with four 10,000-image evaluations of ~1.7 s each; a 2,000-image
  validation evaluation costs ~0.4 s); 80-1,000 s under the heaviest sharing.
* accuracy on the stand-in split, one model, every 1/4 epoch: 39, 59, 62, 75 (epoch 1), 81, 78, 88,
  88 (epoch 2), 86, 84, 87, 88 (3), 89, 87, 89, 89 (4), 90, 91, 91, 92 (5), ...: most of the gain in
  the first 2 epochs, then +1 point per epoch or so (the fixed-epoch reference: 52 %);
* batched: sequential 320 CPU s (1,006 s wall), batched 197 CPU s (330 s wall): the vmap path
  takes ~1.6x less CPU for the quick evaluation's 3 models on 100 images.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch


def time_full_data(max_epochs: int, patience: int, evals_per_epoch: int, n_models: int, min_delta: float,
                   ratio: float = 0.05) -> dict:
    from ddlib.datasets import load_dataset
    from ddlib.profiles import get_profile
    from ddlib.training.evaluation import FullDataSettings, evaluate_full_data_converged
    ds = load_dataset("colored_mnist", ratio)
    stand_in = ds.valid is None
    if stand_in:
        ds = dataclasses.replace(ds, valid=ds.test)
    ev = dataclasses.replace(get_profile("quick").full_data.evaluation, n_models=n_models)
    settings = FullDataSettings(ev, max_samples=None, max_epochs=max_epochs, patience=patience, min_delta=min_delta,
                                evals_per_epoch=evals_per_epoch)
    start, cpu = time.perf_counter(), time.process_time()
    result = evaluate_full_data_converged(ds, settings, torch.device("cpu"), progress=True)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    epochs = sum(result.stopped_epochs)
    return {"valid_is_test_stand_in": stand_in, "n_train": len(ds.train), "seconds": seconds, "cpu_seconds": cpu,
            "epochs_trained": list(result.stopped_epochs), "best_epochs": list(result.best_epochs),
            "seconds_per_epoch_incl_validation": seconds / epochs, "test": result.row(),
            "curves": [[dataclasses.asdict(p) for p in c] for c in result.curves]}


def time_batched(n_images: int = 100, epochs: int = 150, n_models: int = 3) -> dict:
    from ddlib.datasets import BiasedDataset, BiasedSplit
    from ddlib.profiles import get_profile
    from ddlib.training.evaluation import evaluate_images
    import numpy as np
    rng = np.random.default_rng(0)
    classes = 10
    images = rng.integers(0, 256, (n_images, 3, 28, 28), dtype=np.uint8)
    targets = np.arange(n_images) % classes
    split = BiasedSplit(images, targets, targets, np.ones(n_images, bool))
    ds = BiasedDataset("synthetic", "synthetic", split, split, tuple(map(str, range(classes))),
                       tuple(map(str, range(classes))), (0.5,) * 3, (0.25,) * 3, dsa_strategy="color_crop_cutout_scale_rotate")
    base = get_profile("quick").evaluation
    base = dataclasses.replace(base, n_models=n_models, train=dataclasses.replace(base.train, epochs=epochs))
    x, y = ds.normalize(images), torch.from_numpy(targets)
    out = {"n_images": n_images, "epochs": epochs, "n_models": n_models, "batch_size": base.train.batch_size,
           "threads": torch.get_num_threads()}
    for name, batched in (("sequential", False), ("batched", True)):
        start, cpu = time.perf_counter(), time.process_time()
        r = evaluate_images(ds, x, y, dataclasses.replace(base, batched=batched), torch.device("cpu"), progress=False)
        out[f"{name}_s"] = time.perf_counter() - start
        out[f"{name}_cpu_s"] = time.process_time() - cpu  # all threads: what a busy, shared CPU cannot distort
        out[f"{name}_acc"] = r.mean.overall
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["full-data", "batched"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--min-delta", type=float, default=0.0)
    parser.add_argument("--evals-per-epoch", type=int, default=1)
    parser.add_argument("--models", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.what == "full-data":
        out = time_full_data(args.max_epochs, args.patience, args.evals_per_epoch, args.models, args.min_delta)
    else:
        out = time_batched()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
