"""Throughput of the Corrupted CIFAR-10 corruptions: images/s per corruption, then a parallel build.

Run ``python -m ddlib.tools.benchmark_corruptions [--images 500] [--severity 5] [--workers 2]``. It uses
CIFAR-10 test images when a CIFAR-10 source is available (``$DDLIB_DATA_ROOT``, cache) and smooth
random images otherwise (the timings are nearly the same: the work does not depend on content).
The last line estimates the time to corrupt the 50,000-image training set at the 5 % ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ddlib.core import env
from ddlib.datasets.assignment import assign_attributes
from ddlib.datasets.corruptions import CORRUPTIONS, corrupt_images, default_workers
from ddlib.sources import DataSourceError, load_cifar10


def benchmark_images(n: int, seed: int = 0) -> tuple[np.ndarray, str]:
    try:
        cifar = load_cifar10(allow_download=False)
        index = np.random.default_rng(seed).choice(len(cifar.test_images), size=n, replace=False)
        return cifar.test_images[np.sort(index)], cifar.provenance.get("display_name", "CIFAR-10") + " test images"
    except DataSourceError:
        from scipy import ndimage
        rng = np.random.default_rng(seed)
        smooth = np.stack([ndimage.gaussian_filter(rng.uniform(0, 1, (32, 32, 3)), (3, 3, 0)) for _ in range(n)])
        lo, hi = smooth.min(axis=(1, 2, 3), keepdims=True), smooth.max(axis=(1, 2, 3), keepdims=True)
        return ((smooth - lo) / (hi - lo) * 255).astype(np.uint8), "smooth random images (no CIFAR-10 source)"


def per_corruption_rates(images: np.ndarray, severity: int, seed: int = 0) -> dict[str, float]:
    """Single-process images/s of every corruption on ``images``."""
    rates = {}
    for k, name in enumerate(CORRUPTIONS):
        start = time.perf_counter()
        corrupt_images(images, k, severity, np.random.default_rng(seed))
        rates[name] = len(images) / (time.perf_counter() - start)
    return rates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500, help="images per corruption (default 500)")
    parser.add_argument("--severity", type=int, default=5, help="CIFAR-10-C level 1..5 (default 5 = LfF severity4)")
    parser.add_argument("--workers", type=int, default=None, help="processes for the parallel run (default: cores)")
    args = parser.parse_args(argv)
    env.absolutize_at_entry("python -m ddlib.tools.benchmark_corruptions")
    images, origin = benchmark_images(args.images)
    workers = args.workers or default_workers()
    print(f"{len(images)} {origin}, severity {args.severity}, one process")
    rates = per_corruption_rates(images, args.severity)
    for name, rate in rates.items():
        print(f"  {name:<11s} {rate:9.0f} images/s")
    # The 5 % training set: 95 % of every class carries its own corruption, the rest spread evenly.
    targets = np.repeat(np.arange(10), len(images) // 10 or 1)[:len(images)]
    mixed = images[:len(targets)]
    ids = assign_attributes(targets, 0.05, len(CORRUPTIONS))
    start = time.perf_counter()
    corrupt_images(mixed, ids, args.severity, np.random.default_rng(0), workers=workers,
                   chunk_size=max(1, len(mixed) // (4 * workers)))
    rate = len(mixed) / (time.perf_counter() - start)
    print(f"mixed corruptions, {workers} process(es): {rate:.0f} images/s "
          f"→ about {50_000 / rate:.0f} s for the 50,000 training images (+ {10_000 / rate:.0f} s for the test set)")


if __name__ == "__main__":
    main()
