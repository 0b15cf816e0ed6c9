"""The ten corruptions of LfF's Corrupted CIFAR-10 ("type0"), at 32×32, with numpy/scipy/PIL only.

Functions and constants follow CIFAR-10-C (Hendrycks & Dietterich 2019, ``make_cifar_c.py``) at
CIFAR scale. ``severity`` here is the CIFAR-10-C corruption *level* 1..5. LfF's data-set folders
are named by ``severity s`` with corruption level ``s + 1``, so LfF's standard ``severity4`` data
(used by LfF, DFA and Biased-DD) is ``severity=5`` here, and LfF ``severity1..4`` = 2..5.

Where the reference used ImageMagick or OpenCV we re-implement the operation:

* snow — ImageMagick's ``motion_blur(radius, sigma, angle)`` as a one-sided Gaussian-weighted sum
  of shifted copies of the snow layer along the angle (the kernel ImageMagick uses);
* spatter (levels 1–3, "water") — OpenCV's Canny edge detector is approximated by Sobel magnitude
  with hysteresis thresholds 50/150 (no non-maximum suppression), the distance transform is
  scipy's exact Euclidean one; the remaining steps (truncate at 20, 3×3 blur, histogram
  equalisation, emboss kernel, blur) are as in the reference;
* elastic — the reference's affine warp and elastic displacement are composed and sampled with
  one bilinear interpolation instead of two;
* frost — the reference's texture images, the files of the ``imagecorruptions`` package (found by
  :mod:`ddlib.sources.frost`, sha256-checked; the package is never imported), resized by 0.2
  and randomly cropped as in the reference (textures 1–5, as the reference draws ``randint(5)``).

Every random draw comes from a per-image generator seeded from the caller's generator, so results
do not depend on how the work is split over processes. Outputs are truncated to uint8 as the
reference's ``np.uint8(...)``.
"""

from __future__ import annotations

import io
import math
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache

import numpy as np
from scipy import ndimage

from ddlib.core import env

# LfF's type0 order: attribute k is the k-th corruption.
CORRUPTIONS = ("snow", "frost", "fog", "brightness", "contrast", "spatter", "elastic", "jpeg", "pixelate", "saturate")
CORRUPTION_NAMES = ("Snow", "Frost", "Fog", "Brightness", "Contrast", "Spatter", "Elastic", "JPEG", "Pixelate",
                    "Saturate")
SEVERITIES = (1, 2, 3, 4, 5)
LFF_STANDARD_SEVERITY = 5  # LfF's "severity4" folder


def lff_folder_name(severity: int) -> str | None:
    """LfF's folder name for our severity (CIFAR-10-C level): level s + 1 ↔ ``severity{s}``."""
    check_severity(severity)
    return None if severity == 1 else f"severity{severity - 1}"


def check_severity(severity: int) -> None:
    if severity not in SEVERITIES:
        raise ValueError(f"corruption severity must be a CIFAR-10-C level in 1..5 (LfF's severity4 = 5), "
                         f"got {severity}")


# -- helpers -------------------------------------------------------------------------------------
def _gray(x: np.ndarray) -> np.ndarray:
    """RGB → luma as OpenCV's COLOR_RGB2GRAY."""
    return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


def _clipped_zoom(img: np.ndarray, zoom: float) -> np.ndarray:
    h = img.shape[0]
    ch = int(np.ceil(h / zoom))
    top = (h - ch) // 2
    out = ndimage.zoom(img[top:top + ch, top:top + ch], zoom, order=1)
    trim = (out.shape[0] - h) // 2
    return out[trim:trim + h, trim:trim + h]


def _shift_edge(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Shift a 2-D array by (dx, dy) pixels, filling with the edge values."""
    h, w = img.shape
    ys = np.clip(np.arange(h) - dy, 0, h - 1)
    xs = np.clip(np.arange(w) - dx, 0, w - 1)
    return img[np.ix_(ys, xs)]


def motion_blur(layer: np.ndarray, radius: int, sigma: float, angle: float) -> np.ndarray:
    """ImageMagick-style motion blur of a 2-D layer: Σ_i k_i · shift(layer, i · direction), i = 0..2r."""
    width = 2 * radius + 1
    kernel = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2))
    kernel /= kernel.sum()
    direction = (math.sin(math.radians(angle)), math.cos(math.radians(angle)))
    out = np.zeros_like(layer, dtype=np.float64)
    for i in range(width):
        dy = -math.ceil(i * direction[0] - 0.5)
        dx = -math.ceil(i * direction[1] - 0.5)
        if abs(dy) >= layer.shape[0] or abs(dx) >= layer.shape[1]:
            break
        out += kernel[i] * _shift_edge(layer, dx, dy)
    return out


def plasma_fractal(rng: np.random.Generator, mapsize: int = 32, wibbledecay: float = 3.0) -> np.ndarray:
    """Diamond-square height map in [0, 1] (the reference's ``plasma_fractal``, CIFAR map size 32)."""
    maparray = np.zeros((mapsize, mapsize))
    stepsize, wibble = mapsize, 100.0

    def wibbled_mean(array: np.ndarray) -> np.ndarray:
        return array / 4 + wibble * rng.uniform(-wibble, wibble, array.shape)

    while stepsize >= 2:
        half = stepsize // 2
        corners = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        square = corners + np.roll(corners, -1, axis=0)
        square = square + np.roll(square, -1, axis=1)
        maparray[half:mapsize:stepsize, half:mapsize:stepsize] = wibbled_mean(square)
        dr = maparray[half:mapsize:stepsize, half:mapsize:stepsize]
        ul = maparray[0:mapsize:stepsize, 0:mapsize:stepsize]
        maparray[0:mapsize:stepsize, half:mapsize:stepsize] = wibbled_mean(
            dr + np.roll(dr, 1, axis=0) + ul + np.roll(ul, -1, axis=1))
        maparray[half:mapsize:stepsize, 0:mapsize:stepsize] = wibbled_mean(
            dr + np.roll(dr, 1, axis=1) + ul + np.roll(ul, -1, axis=0))
        stepsize //= 2
        wibble /= wibbledecay
    maparray -= maparray.min()
    return maparray / maparray.max()


def _rgb_to_hsv(x: np.ndarray) -> np.ndarray:
    from matplotlib.colors import rgb_to_hsv
    return rgb_to_hsv(np.clip(x, 0, 1))


def _hsv_to_rgb(x: np.ndarray) -> np.ndarray:
    from matplotlib.colors import hsv_to_rgb
    return hsv_to_rgb(x)


# -- the corruptions (x: float HWC in [0, 1] → float HWC, clipped by the caller) ------------------
def snow(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    c = [(0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
         (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)][level - 1]
    layer = rng.normal(loc=c[0], scale=c[1], size=x.shape[:2])
    layer = _clipped_zoom(layer, c[2])
    layer[layer < c[3]] = 0
    # The reference round-trips the layer through an 8-bit PNG before blurring it.
    layer = np.floor(np.clip(layer, 0, 1) * 255) / 255
    layer = motion_blur(layer, radius=c[4], sigma=c[5], angle=rng.uniform(-135, -45))
    layer = np.floor(layer * 255) / 255  # ImageMagick's 8-bit output
    layer = layer[..., None]
    x = c[6] * x + (1 - c[6]) * np.maximum(x, _gray(x)[..., None] * 1.5 + 0.5)
    return x + layer + np.rot90(layer, k=2)


@lru_cache(maxsize=1)
def frost_textures() -> tuple[np.ndarray, ...]:
    """The reference's frost textures 1–5, RGB in [0, 1], resized by 0.2 as for CIFAR-10-C."""
    from PIL import Image

    from ddlib.sources.frost import frost_texture_files
    files, _ = frost_texture_files()
    textures = []
    for name in ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg"):
        with Image.open(io.BytesIO(files[name])) as im:
            im = im.convert("RGB")
            small = im.resize((round(im.width * 0.2), round(im.height * 0.2)), Image.BILINEAR)
            textures.append(np.asarray(small, dtype=np.float64) / 255.0)
    return tuple(textures)


def frost(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    c = [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)][level - 1]
    textures = frost_textures()
    texture = textures[int(rng.integers(len(textures)))]
    h, w = x.shape[:2]
    top = int(rng.integers(0, texture.shape[0] - h))
    left = int(rng.integers(0, texture.shape[1] - w))
    return c[0] * x + c[1] * texture[top:top + h, left:left + w]


def fog(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    c = [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)][level - 1]
    max_val = x.max()
    h, w = x.shape[:2]
    x = x + c[0] * plasma_fractal(rng, mapsize=32, wibbledecay=c[1])[:h, :w, None]
    return x * max_val / (max_val + c[0])


def brightness(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    c = [0.05, 0.1, 0.15, 0.2, 0.3][level - 1]
    hsv = _rgb_to_hsv(x)
    hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)
    return _hsv_to_rgb(hsv)


def contrast(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    c = [0.75, 0.5, 0.4, 0.3, 0.15][level - 1]
    means = x.mean(axis=(-3, -2), keepdims=True)
    return (x - means) * c + means


def _approximate_canny(img: np.ndarray, low: float = 50, high: float = 150) -> np.ndarray:
    """Edge mask of a uint8 image: Sobel L1 magnitude with hysteresis (OpenCV's Canny minus thinning)."""
    f = img.astype(np.float64)
    magnitude = np.abs(ndimage.sobel(f, axis=0, mode="mirror")) + np.abs(ndimage.sobel(f, axis=1, mode="mirror"))
    weak = magnitude > low
    labels, count = ndimage.label(weak, structure=np.ones((3, 3)))
    if count == 0:
        return weak
    strong_labels = np.unique(labels[magnitude > high])
    return np.isin(labels, strong_labels[strong_labels > 0])


def _equalize_hist(img: np.ndarray) -> np.ndarray:
    """OpenCV's equalizeHist for a uint8 image."""
    hist = np.bincount(img.ravel(), minlength=256)
    cdf = hist.cumsum()
    nonzero = cdf[cdf > 0]
    if nonzero.size == 0 or cdf[-1] == nonzero[0]:
        return img.copy()
    lut = np.clip(np.round((cdf - nonzero[0]) * 255.0 / (cdf[-1] - nonzero[0])), 0, 255).astype(np.uint8)
    return lut[img]


def spatter(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    c = [(0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
         (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1)][level - 1]
    liquid = rng.normal(loc=c[0], scale=c[1], size=x.shape[:2])
    liquid = ndimage.gaussian_filter(liquid, sigma=c[2], mode="nearest")
    liquid[liquid < c[3]] = 0
    if c[5] == 0:  # water: pale turquoise drops with embossed rims
        liquid_u8 = (liquid * 255).astype(np.uint8)
        edges = _approximate_canny(liquid_u8)
        dist = ndimage.distance_transform_edt(~edges) if edges.any() else np.full(liquid.shape, 20.0)
        dist = np.minimum(dist, 20)
        dist = ndimage.uniform_filter(dist, size=3, mode="mirror").astype(np.uint8)
        dist = _equalize_hist(dist)
        emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float64)
        dist = np.clip(np.round(ndimage.correlate(dist.astype(np.float64), emboss, mode="mirror")), 0, 255)
        dist = ndimage.uniform_filter(dist.astype(np.uint8).astype(np.float64), size=3, mode="mirror")
        m = liquid_u8.astype(np.float64) * dist
        peak = m.max()
        m = (m / peak if peak > 0 else m) * c[4]
        colour = np.array([175, 238, 238]) / 255.0
        return x + m[..., None] * colour
    # mud: brown blotches replace the image
    m = ndimage.gaussian_filter((liquid > c[3]).astype(np.float64), sigma=c[4], mode="nearest")
    m[m < 0.8] = 0
    colour = np.array([63, 42, 20]) / 255.0
    return x * (1 - m[..., None]) + colour * m[..., None]


def _affine_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2×3 matrix A with A · [src, 1] = dst for three point pairs (OpenCV's getAffineTransform)."""
    design = np.hstack([src, np.ones((3, 1))])
    return np.linalg.solve(design, dst).T


def elastic(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    size = x.shape[0]
    c = [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)][level - 1]
    alpha, sigma, affine = (v * size for v in c)
    h, w = x.shape[:2]
    centre = np.array([w, h], dtype=np.float64) // 2
    square = min(h, w) // 3
    src = np.array([centre + square, [centre[0] + square, centre[1] - square], centre - square])  # (x, y)
    dst = src + rng.uniform(-affine, affine, size=src.shape)
    forward = np.vstack([_affine_from_points(src, dst), [0, 0, 1]])
    inverse = np.linalg.inv(forward)
    noise = rng.uniform(-1, 1, size=(2, h, w))
    dx = ndimage.gaussian_filter(noise[0], sigma, mode="reflect", truncate=3) * alpha if sigma > 0 else 0 * noise[0]
    dy = ndimage.gaussian_filter(noise[1], sigma, mode="reflect", truncate=3) * alpha if sigma > 0 else 0 * noise[1]
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    # output pixel p samples the affinely warped image at p + d, i.e. the source at A⁻¹ (p + d)
    qx, qy = xx + dx, yy + dy
    sx = inverse[0, 0] * qx + inverse[0, 1] * qy + inverse[0, 2]
    sy = inverse[1, 0] * qx + inverse[1, 1] * qy + inverse[1, 2]
    return np.stack([ndimage.map_coordinates(x[..., k], [sy, sx], order=1, mode="mirror")
                     for k in range(x.shape[2])], axis=-1)


def _pil_roundtrip(x: np.ndarray, op: Callable) -> np.ndarray:
    from PIL import Image
    image = Image.fromarray(np.clip(x * 255, 0, 255).astype(np.uint8))
    return np.asarray(op(image), dtype=np.float64) / 255.0


def jpeg(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image
    quality = [80, 65, 58, 50, 40][level - 1]

    def compress(image):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return _pil_roundtrip(x, compress)


def pixelate(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image
    c = [0.95, 0.9, 0.85, 0.75, 0.65][level - 1]
    h, w = x.shape[:2]
    return _pil_roundtrip(x, lambda im: im.resize((int(w * c), int(h * c)), Image.BOX).resize((w, h), Image.BOX))


def saturate(x: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    # Levels 1–2 desaturate, 3–5 oversaturate (the CIFAR-10-C constants), so the change is not
    # monotone in the level below 3.
    c = [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)][level - 1]
    hsv = _rgb_to_hsv(x)
    hsv[..., 1] = np.clip(hsv[..., 1] * c[0] + c[1], 0, 1)
    return _hsv_to_rgb(hsv)


CORRUPTION_FUNCTIONS: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "snow": snow, "frost": frost, "fog": fog, "brightness": brightness, "contrast": contrast, "spatter": spatter,
    "elastic": elastic, "jpeg": jpeg, "pixelate": pixelate, "saturate": saturate,
}


def corrupt_image(image: np.ndarray, corruption: str | int, severity: int, rng: np.random.Generator) -> np.ndarray:
    """One uint8 HWC RGB image → its corrupted uint8 version."""
    check_severity(severity)
    name = CORRUPTIONS[corruption] if isinstance(corruption, (int, np.integer)) else corruption
    if name not in CORRUPTION_FUNCTIONS:
        raise ValueError(f"unknown corruption {name!r}; choose one of {', '.join(CORRUPTIONS)}")
    out = CORRUPTION_FUNCTIONS[name](image.astype(np.float64) / 255.0, severity, rng)
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)  # truncation, as the reference's np.uint8(...)


# Corruptions without randomness that work on [..., H, W, 3] stacks: applied to a whole chunk at once.
BATCHABLE = ("brightness", "contrast", "saturate")


def _corrupt_chunk(task: tuple[np.ndarray, np.ndarray, np.ndarray, int]) -> np.ndarray:
    images, corruption_ids, seeds, severity = task
    out = np.empty_like(images)
    for k in np.unique(corruption_ids):
        members = np.flatnonzero(corruption_ids == k)
        name = CORRUPTIONS[int(k)]
        if name in BATCHABLE:
            x = images[members].astype(np.float64) / 255.0
            out[members] = (np.clip(CORRUPTION_FUNCTIONS[name](x, severity, None), 0, 1) * 255).astype(np.uint8)
            continue
        for i in members:
            out[i] = corrupt_image(images[i], name, severity, np.random.default_rng(int(seeds[i])))
    return out


def default_workers() -> int:
    """Worker processes for large builds: ``$DDLIB_WORKERS`` or the usable CPU count (at most 8)."""
    workers = env.workers()  # 1 = no worker processes
    if workers is not None:
        return workers
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _exit_with_parent(parent_pid: int, poll_s: float = 0.5) -> None:
    """Pool initializer: a daemon thread ends this worker as soon as its parent is gone (a parent
    killed with SIGKILL cannot shut its pool down, and its orphaned workers would live on)."""
    import threading
    import time

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(poll_s)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def corrupt_images(images: np.ndarray, corruption_ids: np.ndarray | int, severity: int, rng: np.random.Generator,
                   workers: int = 1, chunk_size: int = 1000, progress: bool = False,
                   desc: str = "corrupting") -> np.ndarray:
    """Corrupt uint8 [N, H, W, 3] images, image ``k`` with corruption ``corruption_ids[k]`` (an index
    into :data:`CORRUPTIONS`). Deterministic given ``rng``'s state, whatever ``workers`` is: every
    image gets its own seed drawn here, in order."""
    check_severity(severity)
    images = np.ascontiguousarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 [N, H, W, 3], got {images.dtype} {images.shape}")
    ids = np.broadcast_to(np.asarray(corruption_ids, dtype=np.int64), (len(images),))
    if len(images) and (ids.min() < 0 or ids.max() >= len(CORRUPTIONS)):
        raise ValueError(f"corruption ids must lie in 0..{len(CORRUPTIONS) - 1}")
    seeds = rng.integers(0, 2 ** 63 - 1, size=len(images), dtype=np.int64)
    if "frost" in {CORRUPTIONS[i] for i in np.unique(ids)}:
        frost_textures()  # fail early (and load once before forking) when the textures are missing
    tasks = [(images[s:s + chunk_size], ids[s:s + chunk_size], seeds[s:s + chunk_size], severity)
             for s in range(0, len(images), chunk_size)]
    from ddlib.core.progress import progress as progress_bar
    bar = progress_bar(None, desc=desc, disable=not progress, total=len(images), unit="img")
    results = []
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            results.append(_corrupt_chunk(task))
            bar.update(len(task[0]))
    else:
        # fork: the workers inherit the loaded textures and need no re-import (spawn elsewhere).
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method),
                                 initializer=_exit_with_parent, initargs=(os.getpid(),)) as pool:
            for task, result in zip(tasks, pool.map(_corrupt_chunk, tasks)):
                results.append(result)
                bar.update(len(task[0]))
    bar.close()
    return np.concatenate(results) if results else images.copy()
