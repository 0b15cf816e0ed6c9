"""Notebook 02's KDE choice for the sweep's main cells, replayed from the selection's cell records.

The selection is sequential: each of its five stages (σ², τ, surrogate length, image lr, iterations)
uses the choices of the stages before it. :func:`validation_choice` calls
:func:`ddlib.experiments.kde_supcon_distillation.select_kde_settings` itself on a runner that answers
from the records (:class:`RecordRunner`), so the candidates and the choice are the notebook's own; until
a stage's records exist, the choice is None and the cells that depend on it are pending.
:func:`default_choice` is the profile's defaults instead (``--kde-choice default``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from ddlib.experiments.grid import Cell
from ddlib.profiles import Profile
from ddlib.sweep.cells import SweepCell, main_ratio
from ddlib.sweep.records import load_cell
from ddlib.training.evaluation import EvalSettings

KDE_CHOICES = ("validation", "default")


class SelectionPending(Exception):
    """A selection stage whose candidates have no record yet."""


class RecordRunner:
    """Stands in for :class:`ddlib.experiments.grid.GridRunner` in ``select_kde_settings``: answers ``run``
    from the sweep's cell records and notes every cell asked for (:attr:`requested`). Raises
    :class:`SelectionPending` when a stage's records are missing."""

    def __init__(self, profile: Profile):
        self.profile = profile
        self.requested: list[SweepCell] = []

    def run(self, cells: Iterable[Cell], seeds: Sequence[int], evaluation: EvalSettings,
            diagnostics: bool = True) -> pd.DataFrame:
        asked = [SweepCell("selection", c, s, evaluation) for c in cells for s in seeds]
        self.requested += asked
        rows = [load_cell(self.profile, sc) for sc in asked]
        if any(r is None for r in rows):
            raise SelectionPending()
        return pd.DataFrame(rows)


def validation_choice(profile: Profile, dataset: str, ipc: int, seed: int) -> tuple[Any, list[SweepCell]]:
    """Notebook 02's choice for (``dataset``, ``ipc``) read from the selection's records (None while a
    stage is missing) and the candidates asked for so far."""
    from ddlib.experiments.kde_supcon_distillation import select_kde_settings
    runner = RecordRunner(profile)
    try:
        choice, _ = select_kde_settings(runner, dataset, main_ratio(profile, dataset), ipc, seed,
                                        profile.evaluation)
    except SelectionPending:
        choice = None
    return choice, runner.requested


def default_choice(profile: Profile, dataset: str):
    """The KDE choice ``--kde-choice default`` runs the main cells with: the profile's defaults
    ``KDEChoice(dataset, kde_method.kde, kde_method.dm.lr_img)``."""
    from ddlib.experiments.kde_supcon_distillation import KDEChoice
    K = profile.kde_method
    return KDEChoice(dataset, K.kde, K.dm.lr_img)
