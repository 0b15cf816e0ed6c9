"""Progress bars that read well in a terminal, in Jupyter and in papermill-executed notebooks.

Plain-text tqdm (no widgets: executed notebooks stay readable on GitHub); when the output is not
a terminal (notebooks, logs) the bar is refreshed at most every ``DDLIB_PROGRESS_INTERVAL``
seconds (default 10) so stored outputs do not fill with thousands of updates.

Every bar says what it is working on: :func:`bar_label` puts the data set and its conflict ratio
before the stage ("colored_mnist 5% · DM+kde ipc=10 seed=0 · distil"), so bars of three data sets
or three seeds are told apart. Every bar ends on a 100 % state, also where its loop stops early
(:meth:`ClosingBar.stop_early`) and where it is cleared on close (``leave=False``): without it the
last refresh of a bar shorter than the refresh interval would be its 0 % state.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from tqdm import tqdm

from ddlib.core import env

T = TypeVar("T")
SEPARATOR = " · "  # between the parts of a label; never ":" (the terminal reads "<label>: NN%|")


class ClosingBar(tqdm):
    """A tqdm bar that shows its final state before it is cleared, and can end early at 100 %."""

    def stop_early(self, note: str = "stopped early") -> None:
        """The loop ends before ``total`` by design (a validation plateau): what ran is the whole, so
        the bar closes at 100 % of ``n`` with ``note`` and the planned total beside it."""
        if self.disable or self.total is None or self.n >= self.total:
            return
        planned = self.total
        self.total = self.n
        self.set_postfix_str(f"{self.postfix + ', ' if self.postfix else ''}{note} at {self.n} of {planned}",
                             refresh=False)

    def close(self) -> None:
        if not self.disable and not self.leave and getattr(self, "n", 0):
            self.refresh()  # the final state reaches the stream before the line is cleared
        super().close()


def progress(iterable: Iterable[T] | None, desc: str, disable: bool = False, **kwargs: Any) -> ClosingBar:
    interactive = sys.stderr.isatty()
    interval = env.progress_interval() or 10.0
    options = {"mininterval": 0.1 if interactive else interval, "ascii": not interactive,
               "dynamic_ncols": interactive, "ncols": None if interactive else 130, **kwargs}
    return ClosingBar(iterable, desc=desc, disable=disable, **options)


def variant_tag(name: str, conflict_ratio: float | None, unbiased: bool = False) -> str:
    """``<name> <ratio>%`` or ``<name> unbiased``: a data set variant in a bar's label."""
    variant = "unbiased" if unbiased else "" if conflict_ratio is None else f"{100 * float(conflict_ratio):g}%"
    return f"{name} {variant}".strip()


def dataset_tag(dataset: Any) -> str:
    """:func:`variant_tag` of a :class:`~ddlib.datasets.BiasedDataset` (from the spec in its provenance)."""
    spec = (getattr(dataset, "provenance", None) or {}).get("spec") or {}
    return variant_tag(getattr(dataset, "name", "data"), spec.get("conflict_ratio"), bool(spec.get("unbiased")))


def weighting_tag(weights: Mapping[str, Any] | None) -> str:
    """The short name of a weighter's cache identity: "" for vanilla, else "+<kind>" ("+kde")."""
    kind = (weights or {}).get("kind", "none")
    return "" if kind in ("none", "uniform") else f"+{kind}"


def run_tag(method: str, ipc: int, weights: Mapping[str, Any] | None = None, seed: int | None = None) -> str:
    """``DM+kde ipc=10 seed=0``: which distillation run a bar belongs to."""
    return f"{method}{weighting_tag(weights)} ipc={ipc}" + ("" if seed is None else f" seed={seed}")


def bar_label(dataset: Any, *stage: str) -> str:
    """``<data set> · <stage> · ...``: the label of a bar working on ``dataset``."""
    return SEPARATOR.join([dataset_tag(dataset), *(s for s in stage if s)])
