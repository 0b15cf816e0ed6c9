"""Benchmark: milliseconds per iteration and peak memory of DC, DSA, DM and MTT at one IPC.

    python -m ddlib.tools.benchmark_methods [--dataset colored_mnist] [--ipc 10] [--profile quick] [--device cpu]
    python -m ddlib.tools.benchmark_methods --mtt-memory      # the unrolled student's memory at paper settings
    python -m ddlib.tools.benchmark_methods --dataset bg_fmnist --save   # also figures/benchmarks/*.csv

``--save`` writes the table as ``figures/benchmarks/benchmark_methods_<dataset>.csv`` with its provenance
(commit, device, torch, threads, the command); ``python -m ddlib.tools.report --update-readme`` shows the
saved tables in ``docs/benchmarks.md``, so no benchmark figure there is typed by hand.

Each method runs a few iterations of its profile config (caching off) in its own subprocess;
on Linux the kernel's peak mark is reset after the data set is loaded, so the peak RSS covers the
run itself (``peak_over_start_mb``: above the RSS at its start); on CUDA the peak is
``torch.cuda.max_memory_allocated``. An *iteration* is what the method's
iteration count counts: DM — one network and one image step; DC/DSA — one network with its
``outer`` image steps and the ``inner`` network training between them; MTT — one unrolled student
of ``syn_steps`` steps and one image step. Expert training (MTT) is done before and not timed.

``--mtt-memory`` counts the bytes autograd saves for the unrolled student (ConvNet-3 width 128,
3×32×32, as CIFAR-10) per synthetic image and step, and extrapolates to CIFAR-10 IPC 50
(500 images, 30 steps) with and without step checkpointing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time

import torch

METHOD_ORDER = ("dc", "dsa", "dm", "mtt")
SAVED_FOLDER, SAVED_PREFIX = "benchmarks", "benchmark_methods_"  # figures/benchmarks/benchmark_methods_<dataset>.csv


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo; else what platform says): benchmark figures of two
    machines are not comparable, so a saved table names its machine."""
    import platform
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM), so the peak excludes data loading (Linux ≥ 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _bench_config(method: str, profile, iterations: int, ipc: int):
    from ddlib.distill import method_config

    config = method_config(method, profile)
    config = dataclasses.replace(config, iterations=iterations, checkpoint_every=0)
    if method == "mtt":  # experts only have to exist (untimed): one short expert on a subset
        schedule = config.schedule_for(ipc)
        experts = dataclasses.replace(config.experts, count=1, epochs=schedule.max_start_epoch + schedule.expert_epochs,
                                      max_train_samples=min(2000, config.experts.max_train_samples or 2000))
        config = dataclasses.replace(config, experts=experts)
    return config


def measure_one(method: str, dataset_name: str, ipc: int, profile_name: str, iterations: int, device: str,
                batched_classes: bool | None = None) -> dict:
    """Run ``iterations`` of ``method`` here and return its timing and memory (call in a fresh process)."""
    from ddlib.datasets import load_dataset
    from ddlib.distill import registry
    from ddlib.distill.mtt import load_experts
    from ddlib.profiles import get_profile

    dev = torch.device(device)
    profile = get_profile(profile_name)
    dataset = load_dataset(dataset_name, profile.conflict_ratios[0], seed=profile.seed)
    config = _bench_config(method, profile, iterations, ipc)
    if method == "mtt":
        load_experts(dataset, config.experts, device=dev, progress=False)
    rss_before = _rss_mb()
    peak_reset = _reset_peak_rss()
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    extra = {"batched": batched_classes} if method in ("dc", "dsa") else {}
    syn = registry.METHODS[method].run(dataset, ipc, config, weighter=None, device=dev, progress=False,
                                       use_cache=False, **extra)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = syn.provenance["distill_seconds"]
    row = {"method": registry.METHODS[method].display_name, "dataset": dataset.display_name, "ipc": ipc,
           "profile": profile_name, "width": config.model.width, "iterations": iterations,
           "ms_per_iteration": 1000 * seconds / iterations, "device": str(dev)}
    if method in ("dc", "dsa"):
        outer, inner = config.loops_for(ipc)
        row["detail"] = (f"outer={outer} inner={inner} batch_real={config.batch_real} "
                         f"classes={'vmap' if syn.provenance['batched_classes'] else 'loop'}")
    elif method == "dm":
        row["detail"] = f"batch_real={config.batch_real}"
    else:
        s = config.schedule_for(ipc)
        row["detail"] = f"syn_steps={s.syn_steps} batch_syn={s.batch_syn or 'all'} ckpt={config.checkpoint_steps}"
    if dev.type == "cuda":
        row["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        row["memory"] = "cuda max_memory_allocated"
    else:
        peak = _peak_rss_mb()
        row["peak_mb"] = peak
        row["peak_over_start_mb"] = peak - rss_before
        row["memory"] = "peak RSS during the run" if peak_reset else "process peak RSS (incl. data loading)"
    return row


def saved_bytes_per_image_step(images: int = 16, steps: int = 2, width: int = 128, size: int = 32,
                               channels: int = 3, classes: int = 10) -> dict:
    """Bytes autograd saves for the unrolled MTT student, per synthetic image and step."""
    from ddlib.distill.mtt import FlatParams, unroll_student
    from ddlib.models import ConvNetConfig, build_convnet

    gen = torch.Generator().manual_seed(0)
    net = build_convnet(channels, classes, size, ConvNetConfig(depth=3, width=width), gen)
    start = FlatParams(net).flatten(net)
    syn = torch.randn(images, channels, size, size, generator=gen).requires_grad_(True)
    labels = torch.arange(images) % classes
    lr = torch.tensor(0.01, requires_grad=True)
    seen: dict[tuple[int, int], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        seen[key] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        end = unroll_student(net, start, syn, labels, lr, steps, None, torch.Generator().manual_seed(1))
        loss = (end ** 2).sum()
    total = sum(seen.values())
    del loss
    per = total / (images * steps)
    return {"images": images, "steps": steps, "width": width, "params": int(start.numel()),
            "saved_bytes": total, "bytes_per_image_step": per}


def _print_table(rows: list[dict]) -> None:
    import pandas as pd

    frame = pd.DataFrame(rows)
    cols = [c for c in ("method", "ms_per_iteration", "peak_mb", "peak_over_start_mb", "detail", "width", "ipc",
                        "dataset", "device", "memory") if c in frame]
    with pd.option_context("display.width", 200, "display.max_colwidth", 60, "display.float_format", "{:.0f}".format):
        print(frame[cols].to_string(index=False))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="colored_mnist")
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--device", default=None)
    parser.add_argument("--methods", default=",".join(METHOD_ORDER))
    parser.add_argument("--iterations", default="dc=1,dsa=1,dm=10,mtt=5",
                        help="iterations timed per method, e.g. dc=1,dsa=1,dm=10,mtt=5")
    parser.add_argument("--batched-classes", choices=("auto", "vmap", "loop"), default="auto",
                        help="DC/DSA per-class gradients: vmap over classes, the class loop, or the device default")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one method, print JSON
    parser.add_argument("--mtt-memory", action="store_true")
    parser.add_argument("--save", action="store_true",
                        help="also write figures/benchmarks/benchmark_methods_<dataset>.csv (docs/benchmarks.md)")
    args = parser.parse_args(argv)
    from ddlib.core import env
    env.absolutize_at_entry("python -m ddlib.tools.benchmark_methods")
    from ddlib.core.device import pick_device

    device = str(pick_device(args.device))
    iterations = {k: int(v) for k, v in (kv.split("=") for kv in args.iterations.split(","))}

    if args.mtt_memory:
        r = saved_bytes_per_image_step()
        per = r["bytes_per_image_step"]
        full = per * 500 * 30
        one_step = per * 500
        print(f"unrolled MTT student, ConvNet-3 width {r['width']} on 3×32×32 ({r['params']:,} parameters): "
              f"{per / 2**20:.2f} MiB saved per synthetic image per step "
              f"(measured on {r['images']} images × {r['steps']} steps)")
        print(f"CIFAR-10 IPC 50 (500 images × 30 steps): {full / 2**30:.1f} GiB without checkpointing; "
              f"with checkpoint_steps ≈ {one_step / 2**30:.2f} GiB for the one step rebuilt in the backward pass "
              f"+ {30 * r['params'] * 4 / 2**20:.0f} MiB of kept parameter vectors")
        return

    if args.one:
        batched = {"auto": None, "vmap": True, "loop": False}[args.batched_classes]
        print("RESULT " + json.dumps(measure_one(args.one, args.dataset, args.ipc, args.profile,
                                                 iterations[args.one], device, batched)))
        return

    rows = []
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        if method not in METHOD_ORDER:
            raise SystemExit(f"unknown method {method!r}; choose from {', '.join(METHOD_ORDER)}")
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "ddlib.tools.benchmark_methods", "--one", method, "--dataset", args.dataset,
               "--ipc", str(args.ipc), "--profile", args.profile, "--device", device, "--iterations", args.iterations,
               "--batched-classes", args.batched_classes]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"{method} failed:\n{out.stderr[-3000:]}")
        line = next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))
        rows.append(json.loads(line[len("RESULT "):]))
        print(f"{method}: done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device.startswith("cuda") else ""))
    _print_table(rows)
    if args.save:
        import pandas as pd

        from ddlib.core.results import run_provenance, save_table
        command = "python -m ddlib.tools.benchmark_methods " + " ".join(argv if argv is not None else sys.argv[1:])
        path = save_table(pd.DataFrame(rows), f"{SAVED_PREFIX}{args.dataset}", SAVED_FOLDER,
                          run_provenance(args.profile, torch.device(device), threads=torch.get_num_threads(),
                                         cpu=cpu_model(), cpu_count=os.cpu_count(),
                                         command=command))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
