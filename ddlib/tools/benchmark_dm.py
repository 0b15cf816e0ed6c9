"""Benchmark of one DM iteration: batched classes vs the reference's per-class loop.

    python -m ddlib.tools.benchmark_dm --profile quick --ipc 10 --batch-real 256

prints milliseconds per iteration (median over timed iterations after warm-up) and the peak
memory of each variant. Every variant runs in its own subprocess so that peak memory (RSS on
the CPU, ``torch.cuda.max_memory_allocated`` on a GPU) belongs to that variant alone.
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

import torch


def _time_dm_iterations(dataset_name: str, profile_name: str, ipc: int, batch_real: int, iterations: int,
                        warmup: int, batched: bool, device: str) -> dict:
    from ddlib.augment import DSA
    from ddlib.datasets import load_dataset
    from ddlib.distill.dm import default_embed_chunk, dm_loss, dm_loss_per_class
    from ddlib.distill.synthetic import class_index_tensors, init_from_real, sample_class_batches
    from ddlib.models import build_convnet
    from ddlib.profiles import get_profile
    from ddlib.core.seeding import torch_generator

    profile = get_profile(profile_name)
    config = replace(profile.dm, batch_real=batch_real)
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
    loss_fn = dm_loss if batched else dm_loss_per_class
    times = []
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for it in range(warmup + iterations):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        net = build_convnet(dataset.channels, c, dataset.image_size, config.model, gens[0], dev)
        net.requires_grad_(False)
        index = sample_class_batches(members, config.batch_real, gens[1])
        real = dataset.normalize(train_images[index.flatten()], dev).view(*index.shape, *train_images.shape[1:])
        params = dsa.draw(c, gens[2], dataset.image_size[0])
        # the loop is the reference's formulation: one class (batch_real images) per forward pass
        chunk = default_embed_chunk(dev) if batched else None
        loss = loss_fn(net, real, syn.view(c, ipc, *syn.shape[1:]), None, dsa, params, chunk)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if it >= warmup:
            times.append(time.perf_counter() - t0)
    if dev.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
        memory_kind = "GPU max allocated"
    else:
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
        memory_kind = "process peak RSS"
    return {"variant": "batched" if batched else "per-class loop", "ms_per_iteration": 1000 * statistics.median(times),
            "peak_memory_mb": peak_mb, "memory": memory_kind, "device": str(dev),
            "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU",
            "threads": torch.get_num_threads(), "width": config.model.width, "ipc": ipc, "batch_real": batch_real}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="colored_mnist")
    parser.add_argument("--profile", default="quick", help="network and DM settings (smoke|quick|paper)")
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--batch-real", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--variant", choices=["batched", "loop"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.variant:  # child process: one variant, JSON on stdout
        result = _time_dm_iterations(args.dataset, args.profile, args.ipc, args.batch_real, args.iterations,
                                     args.warmup, args.variant == "batched", args.device)
        print(json.dumps(result))
        return

    rows = []
    for variant in ("batched", "loop"):
        cmd = [sys.executable, "-m", "ddlib.tools.benchmark_dm", "--variant", variant, "--dataset", args.dataset,
               "--profile", args.profile, "--ipc", str(args.ipc), "--batch-real", str(args.batch_real),
               "--iterations", str(args.iterations), "--warmup", str(args.warmup), "--device", args.device]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"benchmark variant {variant} failed:\n{proc.stderr[-2000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    first = rows[0]
    print(f"DM iteration on {args.dataset}, profile {args.profile} (ConvNet width {first['width']}), IPC {args.ipc}, "
          f"{args.batch_real} real images per class, device {first['device_name']} ({first['threads']} threads)")
    print(f"{'variant':<16} {'ms/iteration':>13} {'peak memory (MB)':>17}  memory measured as")
    for r in rows:
        print(f"{r['variant']:<16} {r['ms_per_iteration']:>13.1f} {r['peak_memory_mb']:>17.0f}  {r['memory']}")
    print(f"speed-up of batching: {rows[1]['ms_per_iteration'] / rows[0]['ms_per_iteration']:.2f}×")


if __name__ == "__main__":
    main()
