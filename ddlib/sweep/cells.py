"""What one job of a sweep is: :class:`SweepCell`, a grid cell at one distillation seed, and the groups
of the grid (which notebook's cells it belongs to)."""

from __future__ import annotations

from dataclasses import dataclass

from ddlib.experiments.grid import Cell
from ddlib.profiles import Profile
from ddlib.training.evaluation import EvalSettings

GROUPS = ("analysis", "selection", "main", "ablation")
# The sweep groups whose sets each notebook distils and evaluates (reproduce.sh --dry-run). Approximate:
# full-data evaluations, notebook 02's validation selection, surrogate diagnostics and data set builds
# are not cells, and a cell counts as cached only once the sweep (not a notebook) has recorded it.
NOTEBOOK_GROUPS = {"01": ("analysis",), "02": ("selection", "main"), "03": ("ablation",)}


@dataclass(frozen=True)
class SweepCell:
    """One job of a sweep: a grid cell at one distillation seed, judged by ``evaluation`` (None: the
    profile's; the selection's candidates: its validation settings). ``group``: which notebook's grid
    it was expanded for; bookkeeping only, not part of its record's key."""

    group: str
    cell: Cell
    seed: int
    evaluation: EvalSettings | None = None

    def settings(self, profile: Profile) -> EvalSettings:
        return self.evaluation if self.evaluation is not None else profile.evaluation

    @property
    def settings_split(self) -> str:
        return "test" if self.evaluation is None else self.evaluation.split

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"unknown cell group {self.group!r}; expected one of {GROUPS}")
        if not isinstance(self.cell, Cell):
            raise TypeError(f"a sweep cell wraps a ddlib.experiments.grid.Cell, got {type(self.cell).__name__}")

    @property
    def label(self) -> str:
        c = self.cell
        kde = "" if c.kde is None else f" σ²={c.kde.sigma2:g} τ={c.kde.tau:g} {c.kde.scope}"
        settings = "" if c.lr_img is None else f" lr_img={c.lr_img:g}"
        settings += "" if c.surrogate is None else f" surrogate={c.surrogate.epochs:g}ep"
        settings += "" if c.iterations is None else f" iterations={c.iterations}"
        data = "unbiased" if c.unbiased else "biased"
        split = "" if self.evaluation is None or self.evaluation.split == "test" else f" ({self.evaluation.split})"
        return (f"{self.group}: {c.dataset} {c.conflict_ratio:g} {data} IPC {c.ipc} {c.label}{kde}{settings} "
                f"seed {self.seed}{split}")


def main_ratio(profile: Profile, dataset: str) -> float:
    """The ratio of notebook 02's cells of ``dataset``: ``kde_method.conflict_ratio``, or the data set's
    only published ratio (BFFHQ: 0.5 %; it exists at no other)."""
    from ddlib.datasets import dataset_info
    return dataset_info(dataset).conflict_ratios((profile.kde_method.conflict_ratio,))[0]
