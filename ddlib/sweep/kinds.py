"""The kinds of cell in a grid, and a few cells that cover them all: :func:`cell_features`, :func:`covering_cells`.

A grid of thousands of cells holds few *kinds*: each cell is a combination of a group, a data set, a
ratio, an IPC, a method, a weighting, a variant, the biased or unbiased data and the split it is
judged on. A code path that breaks for one value (MTT with ZCA on CIFAR, DC's IPC-50 loops, BFFHQ's
64-pixel images, a competitor with MTT) breaks for every cell with it, so running a set of cells in
which each value, and each pairing of the method with the data set, the IPC and the weighting,
appears at least once executes every path of the grid. ``covering_cells`` picks such a set greedily.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ddlib.sweep.cells import SweepCell

Feature = tuple[str, object]

# the pairings a code path can depend on jointly, beside each single dimension
PAIRS: tuple[tuple[str, str], ...] = (("method", "dataset"), ("method", "ipc"), ("method", "weighting"))


def cell_dimensions(sc: SweepCell) -> dict[str, object]:
    """What kind of cell ``sc`` is, dimension by dimension."""
    c = sc.cell
    return {"group": sc.group, "dataset": c.dataset, "ratio": c.conflict_ratio, "ipc": c.ipc, "method": c.method,
            "weighting": c.weighting, "variant": c.variant, "unbiased": c.unbiased, "split": sc.settings_split}


def cell_features(sc: SweepCell) -> frozenset[Feature]:
    """The features a cell covers: each dimension's value and each pairing of :data:`PAIRS`."""
    dims = cell_dimensions(sc)
    single = {(name, value) for name, value in dims.items()}
    paired = {(f"{a}×{b}", (dims[a], dims[b])) for a, b in PAIRS}
    return frozenset(single | paired)


def grid_features(cells: Iterable[SweepCell]) -> frozenset[Feature]:
    """Every feature of ``cells``."""
    return frozenset().union(*(cell_features(sc) for sc in cells))


def covering_cells(cells: Sequence[SweepCell]) -> list[SweepCell]:
    """A few of ``cells`` that together cover every feature of them all: greedily, the cell with the most
    features not covered yet (the first in ``cells`` on a tie), until none is left. Deterministic."""
    features = [cell_features(sc) for sc in cells]
    remaining = set().union(*features)
    chosen: list[SweepCell] = []
    while remaining:
        best = max(range(len(cells)), key=lambda i: (len(features[i] & remaining), -i))
        chosen.append(cells[best])
        remaining -= features[best]
    return chosen
