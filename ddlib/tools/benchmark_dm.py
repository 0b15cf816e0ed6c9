"""Benchmarks of DM and of the evaluation protocol: this repository's paths vs the reference's.

    python -m ddlib.tools.benchmark_dm dm --profile paper --ipc 50 --batch-real 256 --device cuda
    python -m ddlib.tools.benchmark_dm eval --profile paper --ipc 50 --epochs 5 --device cuda
    python -m ddlib.tools.benchmark_dm layers --width 32 --batch 128
    python -m ddlib.tools.benchmark_dm pool --width 32 --batch 64
    python -m ddlib.tools.benchmark_dm quick-run --cache /tmp/cold --run-times figures/quick/run_times.csv

``dm`` prints milliseconds per iteration (median over timed iterations after warm-up) and peak
memory of four variants on the same card and settings:

* ``ours``      — :class:`ddlib.distill.dm.DMMethod`'s iteration as the driver runs it (the
  device-resident path on CUDA, the CPU path otherwise; losses stay on the device);
* ``batched``   — the host-side iteration (CPU generators, all classes in one pass);
* ``loop``      — the same with one forward pass per class;
* ``reference`` — a re-implementation of the reference code's loop: a network built on the host
  every iteration, per class a real batch copied from host memory, one augmentation call for the
  real and one for the synthetic images, one forward pass each (the whole batch at once in the default memory layout, whatever
  CPU path :meth:`ddlib.models.ConvNet.embed` takes), and ``loss.item()`` every step.

``layers`` times each block of the ConvNet (conv 3×3 → instance norm → ReLU → 2×2 average pool) in
PyTorch's default memory layout and in channels-last, forward without gradients (DM's real side,
test-set prediction) and forward + backward (training, DM's synthetic side): on a CPU the layout
decides which oneDNN kernel runs, and the fastest layout differs per layer and per direction.

``pool`` times the 2×2 average pool of the three blocks, PyTorch's CPU kernel against
:class:`ddlib.models.convnet.AvgPool2x2` (the ConvNet's CPU pool), forward and backward, and checks
that both give the same bits.

``eval`` times the evaluation protocol, training and the prediction of the test split: k networks
trained at once (:mod:`ddlib.training.batched`), one after another, and one after another as the
reference runs them (``reference``: every forward pass over the whole batch at once in the default
memory layout, whatever CPU path :meth:`ddlib.models.ConvNet.embed` takes).
``quick-run`` estimates what the quick run would take at the reference loops' speed: it reads where
a cold run's time went from its cache (:mod:`ddlib.tools.profile_run`), measures ``dm`` (ours vs
reference) and ``eval`` (sequential vs reference) side by side now, and scales the run's DM
distillation and synthetic-set evaluation seconds by those two ratios; everything else is kept as
measured. It is an estimate (one setting's ratio stands for every cell), labelled as such.

Every variant runs in its own subprocess so that peak memory (RSS on the CPU,
``torch.cuda.max_memory_allocated`` on a GPU) is its own, and so that ``reference`` can switch the
ConvNet's CPU path off for its process alone.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    import pandas as pd

DM_VARIANTS = ("ours", "batched", "loop", "reference")
EVAL_VARIANTS = ("at-once", "sequential", "reference")


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def _peak(dev: torch.device) -> tuple[float, str]:
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20, "GPU max allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"  # Linux: KiB


def _reference_embed(net, x: torch.Tensor) -> torch.Tensor:
    """The reference's forward pass: the whole batch at once, in the default memory layout."""
    return net.features(x).flatten(1)


def _reference_iteration(dataset, config, members, train_images, syn, optimizer, dsa, gens, dev) -> float:
    """One iteration as the reference code runs it (see the module docstring)."""
    from ddlib.augment import AugmentParams
    from ddlib.models import build_convnet
    c, ipc = dataset.num_classes, syn.shape[0] // dataset.num_classes
    net = build_convnet(dataset.channels, c, dataset.image_size, config.model, gens[0], dev)
    net.train()
    for p in net.parameters():
        p.requires_grad_(False)
    loss = torch.tensor(0.0, device=dev)
    for k in range(c):
        idx = members[k][torch.randperm(len(members[k]), generator=gens[1])[:config.batch_real]]
        real = dataset.normalize(train_images[idx], dev)
        s = syn[k * ipc:(k + 1) * ipc]
        if dsa is not None:  # Siamese: one draw, applied in two calls (real, then synthetic)
            params = dsa.draw(1, gens[2], dataset.image_size[0])
            real = dsa.apply(real, AugmentParams(params.family, params.values))
            s = dsa.apply(s, AugmentParams(params.family, params.values))
        loss = loss + ((_reference_embed(net, real).mean(0) - _reference_embed(net, s).mean(0)) ** 2).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _time_dm_iterations(dataset_name: str, profile_name: str, ipc: int, batch_real: int, iterations: int,
                        warmup: int, variant: str, device: str) -> dict:
    from ddlib.augment import DSA
    from ddlib.datasets import load_dataset
    from ddlib.distill.dm import DMMethod, default_embed_chunk, dm_loss, dm_loss_per_class
    from ddlib.distill.synthetic import class_index_tensors, init_from_real, sample_class_batches
    from ddlib.models import build_convnet
    from ddlib.profiles import get_profile
    from ddlib.core.seeding import torch_generator

    profile = get_profile(profile_name)
    config = replace(profile.kde_method.dm_for(weighted=False), batch_real=batch_real)
    dev = torch.device(device)
    dataset = load_dataset(dataset_name, 0.05)
    images, _, _ = init_from_real(dataset, ipc, torch_generator(0, "init"))
    syn = images.to(dev).requires_grad_(True)
    optimizer = torch.optim.SGD([syn], lr=config.lr_img, momentum=config.momentum)
    members = class_index_tensors(dataset)
    train_images = torch.from_numpy(dataset.train.images)
    dsa = DSA(dataset.dsa_strategy)
    gens = [torch_generator(0, k) for k in range(3)]
    c = dataset.num_classes
    method = None
    if variant == "ours":
        method = DMMethod(dataset, ipc, config, None, dev)
        method.learnables(syn)
        gens_ours = {name: torch_generator(0, "dm", name, device=method.stream_device(name))
                     for name in method.streams}
    times = []
    _sync(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    pending = []
    for it in range(warmup + iterations):
        if it == warmup:
            _sync(dev)
            t_start = time.perf_counter()
        t0 = time.perf_counter()
        if variant == "ours":
            pending.append(method.iteration(it, syn, gens_ours))  # read back in bulk, as the driver does
        elif variant == "reference":
            _reference_iteration(dataset, config, members, train_images, syn, optimizer, dsa, gens, dev)
        else:
            net = build_convnet(dataset.channels, c, dataset.image_size, config.model, gens[0], dev)
            net.requires_grad_(False)
            index = sample_class_batches(members, config.batch_real, gens[1])
            real = dataset.normalize(train_images[index.flatten()], dev).view(*index.shape, *train_images.shape[1:])
            params = dsa.draw(c, gens[2], dataset.image_size[0])
            chunk = default_embed_chunk(dev) if variant == "batched" else None
            loss_fn = dm_loss if variant == "batched" else dm_loss_per_class
            loss = loss_fn(net, real, syn.view(c, ipc, *syn.shape[1:]), None, dsa, params, chunk)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if dev.type == "cpu" and it >= warmup:
            times.append(time.perf_counter() - t0)
    _sync(dev)
    if pending:
        torch.stack(pending).cpu()
    total = time.perf_counter() - t_start
    # on a GPU, per-iteration times would need a synchronisation each: the mean over the timed run instead
    ms = 1000 * (statistics.median(times) if times else total / iterations)
    peak_mb, memory_kind = _peak(dev)
    return {"variant": variant, "ms_per_iteration": ms, "peak_memory_mb": peak_mb, "memory": memory_kind,
            "device": str(dev), "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU",
            "threads": torch.get_num_threads(), "width": config.model.width, "ipc": ipc, "batch_real": batch_real,
            "resident": bool(method.resident) if method is not None else False}


def _time_evaluation(dataset_name: str, profile_name: str, ipc: int, epochs: int, variant: str, device: str) -> dict:
    from ddlib.models import ConvNet

    original = ConvNet.embed
    if variant == "reference":  # every pass whole-batch, default layout (put back below: tests call this)
        ConvNet.embed = _reference_embed
    try:
        return _time_evaluation_variant(dataset_name, profile_name, ipc, epochs, variant, device)
    finally:
        ConvNet.embed = original


def _time_evaluation_variant(dataset_name: str, profile_name: str, ipc: int, epochs: int, variant: str,
                             device: str) -> dict:
    from ddlib.core.seeding import derive_seed, torch_generator
    from ddlib.datasets import load_dataset
    from ddlib.distill.synthetic import init_from_real
    from ddlib.profiles import get_profile
    from ddlib.training.batched import train_classifiers_batched
    from ddlib.training.loop import predict, train_classifier

    profile = get_profile(profile_name)
    settings = profile.evaluation
    train = replace(settings.train, epochs=epochs)
    dev = torch.device(device)
    dataset = load_dataset(dataset_name, 0.05)
    images, labels, _ = init_from_real(dataset, ipc, torch_generator(0, "init"))
    seeds = [derive_seed(settings.seed, "eval-model", k) for k in range(settings.n_models)]
    _sync(dev)
    t0 = time.perf_counter()
    if variant == "at-once":
        models = train_classifiers_batched(dataset, images, labels, train, seeds, dev)
    else:
        models = [train_classifier(dataset, images, labels, train, seed, dev) for seed in seeds]
    _sync(dev)
    seconds = time.perf_counter() - t0
    test_images = torch.from_numpy(dataset.test.images)
    t0 = time.perf_counter()
    predict(models[0], dataset, test_images, dev)
    _sync(dev)
    predict_seconds = time.perf_counter() - t0
    peak_mb, memory_kind = _peak(dev)
    return {"variant": variant, "ms_per_epoch": 1000 * seconds / epochs, "peak_memory_mb": peak_mb,
            "predict_ms": 1000 * predict_seconds, "test_images": len(test_images),
            "memory": memory_kind, "n_models": len(seeds), "width": train.model.width, "ipc": ipc,
            "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU",
            "threads": torch.get_num_threads()}


LAYOUTS = {"default": (False, False, False), "channels-last": (True, True, True),
           "conv cl, norm + pool default": (True, False, False), "conv + pool cl, norm default": (True, False, True)}


def _median_ms(fn, repeats: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def _time_layers(width: int, batch: int, repeats: int) -> list[dict]:
    """Median ms of one ConvNet block per input size and layout (see the module docstring)."""
    import torch.nn.functional as F
    cl = torch.channels_last
    gen = torch.Generator().manual_seed(0)
    norm_w, norm_b = torch.rand(width, generator=gen) + 0.5, torch.rand(width, generator=gen)

    def block(x, w, b, pad, conv_cl, norm_cl, pool_cl):
        if conv_cl:
            x, w = x.contiguous(memory_format=cl), w.contiguous(memory_format=cl)
        y = F.conv2d(x, w, b, padding=pad)
        y = y.contiguous(memory_format=cl) if norm_cl else y.contiguous()
        y = F.relu(F.group_norm(y, width, norm_w, norm_b))
        y = y.contiguous(memory_format=cl) if pool_cl else y.contiguous()
        return F.avg_pool2d(y, 2)

    rows = []
    # the three blocks of the quick ConvNet on 28×28 inputs: 3→w at 28 (padded to 32), w→w at 16, at 8
    for cin, size, pad in ((3, 28, 3), (width, 16, 1), (width, 8, 1)):
        x = torch.randn(batch, cin, size, size, generator=gen)
        w, b = torch.randn(width, cin, 3, 3, generator=gen) * 0.1, torch.randn(width, generator=gen)
        for layout, flags in LAYOUTS.items():
            with torch.no_grad():
                forward = _median_ms(lambda: block(x, w, b, pad, *flags), repeats)
            xg = x.clone().requires_grad_(True)
            both = _median_ms(lambda: block(xg, w, b, pad, *flags).sum().backward(), repeats)
            rows.append({"block": f"{cin}→{width} at {size}×{size}", "layout": layout,
                         "forward_ms": forward, "forward_backward_ms": both})
    return rows


def _time_pools(width: int, batch: int, repeats: int) -> list[dict]:
    """Median ms of PyTorch's 2×2 average pool and of the ConvNet's, forward and backward, on the
    three feature-map sizes of the quick ConvNet (32, 16 and 8 pixels), and whether they agree bit for bit."""
    import torch.nn.functional as F
    from ddlib.models.convnet import AvgPool2x2, _AvgPool2x2Gradient
    gen = torch.Generator().manual_seed(0)
    rows = []
    for size in (32, 16, 8):
        x = torch.randn(batch, width, size, size, generator=gen)
        g = torch.randn(batch, width, size // 2, size // 2, generator=gen)
        theirs_fwd = lambda: F.avg_pool2d(x, 2)  # noqa: E731
        ours_fwd = lambda: AvgPool2x2.apply(x)  # noqa: E731
        theirs_bwd = lambda: torch.ops.aten.avg_pool2d_backward(g, x, [2, 2], [2, 2], [0, 0], False, True, None)  # noqa: E731
        ours_bwd = lambda: _AvgPool2x2Gradient.apply(g, False)  # noqa: E731
        same = torch.equal(theirs_fwd(), ours_fwd()) and torch.equal(theirs_bwd(), ours_bwd())
        rows.append({"maps": f"{batch}×{width}×{size}×{size}", "pytorch_forward_ms": _median_ms(theirs_fwd, repeats),
                     "ours_forward_ms": _median_ms(ours_fwd, repeats), "pytorch_backward_ms": _median_ms(theirs_bwd, repeats),
                     "ours_backward_ms": _median_ms(ours_bwd, repeats), "bit_identical": same})
    return rows


def _with_threads(threads: int, fn):
    """``fn()`` with ``threads`` intra-op threads; the thread count is process-wide, so it is put
    back for a caller that goes on computing."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def _print_pools(args: argparse.Namespace) -> None:
    rows = _with_threads(args.threads, lambda: _time_pools(args.width, args.batch, args.repeats))
    print(f"2×2 average pool, CPU ({args.threads} threads), median of {args.repeats} calls: PyTorch's kernel vs "
          "the ConvNet's (ddlib.models.convnet.AvgPool2x2)")
    print(f"{'maps':<16} {'forward: PyTorch':>17} {'ours':>7} {'ratio':>6}   {'backward: PyTorch':>18} {'ours':>7} "
          f"{'ratio':>6}  same bits")
    for r in rows:
        print(f"{r['maps']:<16} {r['pytorch_forward_ms']:>14.2f} ms {r['ours_forward_ms']:>7.2f} "
              f"{r['pytorch_forward_ms'] / r['ours_forward_ms']:>5.2f}×   {r['pytorch_backward_ms']:>15.2f} ms "
              f"{r['ours_backward_ms']:>7.2f} {r['pytorch_backward_ms'] / r['ours_backward_ms']:>5.2f}×  "
              f"{'yes' if r['bit_identical'] else 'NO'}")


def _print_layers(args: argparse.Namespace) -> None:
    rows = _with_threads(args.threads, lambda: _time_layers(args.width, args.batch, args.repeats))
    print(f"ConvNet blocks, width {args.width}, batch {args.batch}, CPU ({args.threads} threads), "
          f"median of {args.repeats} calls")
    print(f"{'block':<18} {'layout':<30} {'forward (ms)':>13} {'fwd + bwd (ms)':>15}")
    for r in rows:
        print(f"{r['block']:<18} {r['layout']:<30} {r['forward_ms']:>13.2f} {r['forward_backward_ms']:>15.2f}")


# the cold run's parts that the two measured ratios scale (profile_run's labels)
DM_KIND = "synthetic/dm"
EVAL_KIND_PREFIX = "evaluations/synthetic"


def quick_run_estimate(profile: pd.DataFrame, dm_ratio: float, eval_ratio: float) -> pd.DataFrame:
    """Seconds per part of a measured run (``profile``: :func:`ddlib.tools.profile_run.profile_table`
    with a total) and the estimate at the reference loops' speed: DM distillation × ``dm_ratio``,
    synthetic-set evaluation × ``eval_ratio``, the rest as measured."""
    import pandas as pd
    parts = profile[profile["what"] != "total"]
    dm = float(parts.loc[parts["what"] == DM_KIND, "seconds"].sum())
    ev = float(parts.loc[parts["what"].str.startswith(EVAL_KIND_PREFIX), "seconds"].sum())
    rest = float(parts["seconds"].sum()) - dm - ev
    rows = [("DM distillation", dm, dm_ratio), ("synthetic-set evaluation", ev, eval_ratio),
            ("everything else", rest, 1.0)]
    table = pd.DataFrame([{"part": n, "ours (s)": s, "ratio": r, "reference (s, estimate)": s * r}
                          for n, s, r in rows])
    total = pd.DataFrame([{"part": "total", "ours (s)": table["ours (s)"].sum(), "ratio": float("nan"),
                           "reference (s, estimate)": table["reference (s, estimate)"].sum()}])
    return pd.concat([table, total], ignore_index=True)


def _print_quick_run(args: argparse.Namespace) -> None:
    from pathlib import Path
    from ddlib.core.cache import cache_root
    from ddlib.tools.profile_run import _run_times, profile_table, read_builds
    if args.run_times is None:
        sys.exit("quick-run needs --run-times: the run_times.csv that reproduce.sh wrote for the cold run")
    root = Path(args.cache) if args.cache else cache_root()
    builds, _ = read_builds(root)
    if not builds:
        sys.exit(f"no artifact under {root} records its build time: pass --cache with a cold run's cache")
    total, _ = _run_times(Path(args.run_times))
    pairs = (("dm", "ours"), ("dm", "reference"), ("eval", "sequential"), ("eval", "reference"))
    rounds = [{pair: _child(args, *pair) for pair in pairs} for _ in range(args.rounds)]
    medians = {pair: median_row([r[pair] for r in rounds]) for pair in pairs}
    dm = {v: medians[("dm", v)] for v in ("ours", "reference")}
    ev = {v: medians[("eval", v)] for v in ("sequential", "reference")}
    dm_ratio = dm["reference"]["ms_per_iteration"] / dm["ours"]["ms_per_iteration"]
    eval_ratio = ev["reference"]["ms_per_epoch"] / ev["sequential"]["ms_per_epoch"]
    table = quick_run_estimate(profile_table(builds, total), dm_ratio, eval_ratio)
    print(f"measured now ({dm['ours']['device_name']}, {dm['ours']['threads']} threads): DM iteration ours "
          f"{dm['ours']['ms_per_iteration']:.1f} ms vs reference {dm['reference']['ms_per_iteration']:.1f} ms "
          f"({dm_ratio:.2f}×); evaluation epoch ours {ev['sequential']['ms_per_epoch']:.1f} ms vs reference "
          f"{ev['reference']['ms_per_epoch']:.1f} ms ({eval_ratio:.2f}×)")
    print(f"the run in {root} (notebooks {total / 60:.1f} min), and the same work at the reference loops' speed "
          "(an estimate: one setting's ratio stands for every cell)")
    print(table.round({"ours (s)": 0, "ratio": 2, "reference (s, estimate)": 0}).to_string(index=False))


def median_row(rows: list[dict]) -> dict:
    """One variant's rounds as one row: the median of every timing and memory figure, the rest from
    the first round (a machine shared with other work drifts; taking turns and the median absorb it)."""
    out = dict(rows[0])
    for key, value in rows[0].items():
        if isinstance(value, float):
            out[key] = statistics.median(r[key] for r in rows)
    return out


def _child(args: argparse.Namespace, what: str, variant: str) -> dict:
    cmd = [sys.executable, "-m", "ddlib.tools.benchmark_dm", what, "--variant", variant, "--dataset", args.dataset,
           "--profile", args.profile, "--ipc", str(args.ipc), "--batch-real", str(args.batch_real),
           "--iterations", str(args.iterations), "--warmup", str(args.warmup), "--epochs", str(args.epochs),
           "--device", args.device]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"benchmark variant {variant} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", choices=["dm", "eval", "layers", "pool", "quick-run"], default="dm")
    parser.add_argument("--dataset", default="colored_mnist")
    parser.add_argument("--profile", default="quick", help="network, DM and evaluation settings (smoke|quick|paper)")
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--batch-real", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3, help="eval: epochs timed")
    parser.add_argument("--variants", default=None, help="comma-separated subset of the variants")
    parser.add_argument("--rounds", type=int, default=1,
                        help="dm, eval: run the variants this many times in turn and print the medians")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--width", type=int, default=32, help="layers, pool: the ConvNet's width")
    parser.add_argument("--batch", type=int, default=128, help="layers, pool: images per call")
    parser.add_argument("--repeats", type=int, default=30, help="layers, pool: timed calls per cell")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="layers, pool: intra-op threads")
    parser.add_argument("--cache", default=None, help="quick-run: the cold run's cache (default: $DDLIB_CACHE)")
    parser.add_argument("--run-times", default=None, help="quick-run: that run's run_times.csv")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    from ddlib.core import env
    env.absolutize_at_entry("python -m ddlib.tools.benchmark_dm")
    if args.what == "layers":
        _print_layers(args)
        return
    if args.what == "pool":
        _print_pools(args)
        return
    if args.what == "quick-run":
        _print_quick_run(args)
        return

    if args.variant:  # child process: one variant, JSON on stdout
        if args.what == "dm":
            result = _time_dm_iterations(args.dataset, args.profile, args.ipc, args.batch_real, args.iterations,
                                         args.warmup, args.variant, args.device)
        else:
            result = _time_evaluation(args.dataset, args.profile, args.ipc, args.epochs, args.variant, args.device)
        print(json.dumps(result))
        return

    known = DM_VARIANTS if args.what == "dm" else EVAL_VARIANTS
    variants = tuple(args.variants.split(",")) if args.variants else known
    unknown = [v for v in variants if v not in known]
    if unknown:
        parser.error(f"unknown variants {unknown}; {args.what} has {known}")
    rounds = [[_child(args, args.what, v) for v in variants] for _ in range(args.rounds)]
    rows = [median_row([r[k] for r in rounds]) for k in range(len(variants))]
    first = rows[0]
    if args.what == "dm":
        print(f"DM iteration on {args.dataset}, profile {args.profile} (ConvNet width {first['width']}), IPC {args.ipc}, "
              f"{args.batch_real} real images per class, device {first['device_name']} ({first['threads']} threads)"
              + (f"; median of {args.rounds} rounds, the variants taking turns" if args.rounds > 1 else ""))
        print(f"{'variant':<12} {'ms/iteration':>13} {'peak memory (MB)':>17}  memory measured as")
        for r in rows:
            print(f"{r['variant']:<12} {r['ms_per_iteration']:>13.1f} {r['peak_memory_mb']:>17.0f}  {r['memory']}")
        by = {r["variant"]: r["ms_per_iteration"] for r in rows}
        if "ours" in by and "reference" in by:
            per_round = [rd[variants.index("reference")]["ms_per_iteration"] / rd[variants.index("ours")]["ms_per_iteration"]
                         for rd in rounds]
            spread = f" (rounds: {min(per_round):.2f}–{max(per_round):.2f}×)" if len(per_round) > 1 else ""
            print(f"speed-up over the reference loop: {by['reference'] / by['ours']:.2f}×{spread}")
    else:
        print(f"evaluation: {first['n_models']} ConvNets (width {first['width']}) on IPC {args.ipc}, "
              f"profile {args.profile}, device {first['device_name']} ({first['threads']} threads)")
        print(f"{'variant':<12} {'ms/epoch (all models)':>22} {'predict test (ms/model)':>24} {'peak memory (MB)':>17}")
        for r in rows:
            print(f"{r['variant']:<12} {r['ms_per_epoch']:>22.1f} {r['predict_ms']:>24.1f} {r['peak_memory_mb']:>17.0f}")
        print(f"(prediction: the {first['test_images']:,} images of the test split, one network)")
        by = {r["variant"]: r for r in rows}
        if "at-once" in by and "sequential" in by:
            ratio = by["sequential"]["ms_per_epoch"] / by["at-once"]["ms_per_epoch"]
            print(f"speed-up of training them at once: {ratio:.2f}×")
        if "sequential" in by and "reference" in by:
            train_ratio = by["reference"]["ms_per_epoch"] / by["sequential"]["ms_per_epoch"]
            predict_ratio = by["reference"]["predict_ms"] / by["sequential"]["predict_ms"]
            print(f"speed-up over the reference: training {train_ratio:.2f}×, prediction {predict_ratio:.2f}×")


if __name__ == "__main__":
    main()
