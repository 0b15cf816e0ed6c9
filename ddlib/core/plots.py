"""Figures: image grids and saving to ``figures/``.

Figures of the ``quick`` and ``paper`` profiles go to ``figures/<profile>/``; smoke runs (CI) go
to ``figures/smoke/``, which git ignores. ``$DDLIB_FIGURES`` overrides the root folder.

``figures/`` is the repository's when ddlib runs from its source checkout (an editable install or
``PYTHONPATH``). Installed into site-packages (``pip install git+…``, the Colab setup cell) it is
``$DDLIB_OUTPUT/figures``, else ``./figures`` of the current folder: never inside site-packages.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt  # headless runs fall back to Agg by themselves
import numpy as np
import torch

from ddlib.core import env

FIGURES_ENV = env.FIGURES_ENV


def repo_root() -> Path:
    """The folder that holds the ``ddlib`` package: the repository in a source checkout, site-packages
    in an installed copy (:func:`in_source_checkout` tells which)."""
    return Path(__file__).resolve().parents[2]  # ddlib/core/plots.py → the repository


def in_source_checkout(root: Path | None = None) -> bool:
    """Whether ``root`` (default :func:`repo_root`) is ddlib's source checkout: a ``pyproject.toml`` or
    ``.git`` beside the package. False for a copy installed into site-packages."""
    root = repo_root() if root is None else root
    return (root / "pyproject.toml").is_file() or (root / ".git").exists()


def output_root(root: Path | None = None) -> Path:
    """The folder that ``figures/`` goes under: the checkout ``root`` (default :func:`repo_root`) as
    before; outside a checkout ``$DDLIB_OUTPUT``, else the current folder."""
    root = repo_root() if root is None else root
    if in_source_checkout(root):
        return root
    return env.output() or Path.cwd()  # an installed copy: site-packages is no place for results


def figures_dir(profile: str) -> Path:
    """``figures/<profile>/`` (created): under ``$DDLIB_FIGURES`` when set, else under :func:`output_root`."""
    root = env.figures() or output_root() / "figures"
    folder = root / profile
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_figure(fig: plt.Figure, name: str, profile: str) -> Path:
    """Save ``fig`` as ``figures/<profile>/<name>.png`` and return the path."""
    path = figures_dir(profile) / f"{name}.png"
    fig.savefig(path, dpi=130, bbox_inches="tight")
    return path


def image_grid(images: torch.Tensor | np.ndarray, nrow: int, pad: int = 1) -> np.ndarray:
    """[N, C, H, W] images in [0, 1] (float) or uint8 → one HWC array with ``nrow`` images a row."""
    x = torch.as_tensor(images)
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    n, c, h, w = x.shape
    if c == 1:
        x = x.repeat(1, 3, 1, 1)
    rows = int(np.ceil(n / nrow))
    grid = torch.ones(3, rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for k in range(n):
        r, col = divmod(k, nrow)
        grid[:, pad + r * (h + pad): pad + r * (h + pad) + h, pad + col * (w + pad): pad + col * (w + pad) + w] = x[k]
    return grid.permute(1, 2, 0).clamp(0, 1).numpy()


def show_grid(ax: plt.Axes, images: torch.Tensor | np.ndarray, nrow: int, title: str | None = None) -> None:
    ax.imshow(image_grid(images, nrow))
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
