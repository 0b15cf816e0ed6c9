"""Run a profile's experiment grid as independent jobs (SLURM on a cluster, local processes on a workstation).

The sweep runs exactly the cells the notebooks run, through the same library runner
(:class:`ddlib.experiments.grid.GridRunner`). A sweep cell (:class:`SweepCell`, :mod:`ddlib.sweep.cells`) is a
:class:`ddlib.experiments.grid.Cell` plus its distillation seed and the group it was expanded for
(:func:`expand_grid`, :mod:`ddlib.sweep.expansion`; seeds default to ``profile.seeds``):

* ``analysis`` — notebook 01: :func:`ddlib.experiments.bias_analysis.analysis_cells` (random real
  images + ``analysis.methods`` at every ratio and IPC of the profile, on the biased data and, when
  ``analysis.unbiased_data``, on the unbiased variant) for every data set of ``analysis.datasets``;
* ``selection`` — notebook 02's choices on the *validation* split (σ², τ, the surrogate's length,
  the re-weighted image lr and iterations),
  per data set of ``kde_method.datasets`` and IPC of ``kde_method.ipcs``: the candidates of
  :func:`ddlib.experiments.kde_supcon_distillation.select_kde_settings` at the first seed, judged
  as it judges them (``selection.models`` networks, ``split="valid"``);
* ``main`` — notebook 02's main table: :func:`ddlib.experiments.kde_supcon_distillation.main_cells`
  (random real, every method vanilla and + KDE/SupCon, the competitors) for the same data sets and
  IPCs at ``kde_method.conflict_ratio`` (BFFHQ: its only ratio, :func:`main_ratio`), with the KDE
  choice of the selection;
* ``ablation`` — notebook 03's surrogate ablation: :func:`ddlib.experiments.surrogate_ablation.ablation_cells`
  (DM + KDE/SupCon per surrogate variant of ``surrogate_ablation``, the profile's default KDE settings) at
  ``surrogate_ablation``'s seeds (default: the profile's) and evaluation models.

**Stages.** The selection is sequential (:mod:`ddlib.sweep.selection`): each of its five stages (σ², τ,
surrogate length, image lr, iterations) uses the choices of the stages before it, and the main table's
re-weighted cells (KDE, and the competitors through DM's image lr and iterations) use the final choice.
The sweep reads both choices from the selection's cell records, by calling ``select_kde_settings`` itself
on a runner that answers from the records; until they exist, the cells that depend on them are
*pending* (the dry run counts them) and expand on the next pass. The command line
(:mod:`ddlib.tools.sweep`) runs the passes one after the other. ``--kde-choice default`` skips the
selection's influence instead: the main cells then use the profile's defaults
``KDEChoice(dataset, kde_method.kde, kde_method.dm.lr_img)`` in one pass (where the notebook's
validation choice differs, it computes those few cells itself).

Each job (:func:`run_cell`, :mod:`ddlib.sweep.records`) calls ``GridRunner(profile, device,
data_root).run_cell(cell, seed, profile.evaluation)`` — the notebooks' own call, with its cached
artifacts (data set, surrogate, distilled set, evaluation) — so a notebook run after the sweep on the
same cache loads every set and evaluation instead of recomputing it. When the job has finished, it
commits the result row as a small *cell record* to the cache under ``sweep/cells/<key>``; the key
hashes :meth:`ddlib.experiments.grid.GridRunner.cell_identity` (the cell, its seed and every setting
the row depends on; not the group, so a cell of two groups is run once). A rerun submits only the
cells without a complete record; a job killed at any point leaves at most complete artifacts of
finished steps (every cache write is atomic) and no record, so it is simply run again.

Several jobs may share upstream artifacts (a data set, a surrogate, expert trajectories): each is
built under its cache key's lock (``ArtifactDir.lock``), so one job builds it and the others load it.

Modules: :mod:`~ddlib.sweep.cells` (the cell type, the groups), :mod:`~ddlib.sweep.records` (a cell's
record: its key, loading it, running the cell), :mod:`~ddlib.sweep.selection` (the selection's choice
from the records), :mod:`~ddlib.sweep.expansion` (the grid's cells), :mod:`~ddlib.sweep.status` (what
is recorded, the cost of the rest, the dry-run report), :mod:`~ddlib.sweep.executors` (submitit),
:mod:`~ddlib.sweep.jobs` (what a job runs and returns), :mod:`~ddlib.sweep.run` (running the missing cells).
"""

from ddlib.sweep.cells import GROUPS, NOTEBOOK_GROUPS, SweepCell, main_ratio
from ddlib.sweep.executors import EXECUTORS, ExecutorSettings, make_executor
from ddlib.sweep.expansion import absent_datasets, expand_grid, grid_datasets
from ddlib.sweep.jobs import PERMANENT, permanent_errors, run_cell_job
from ddlib.sweep.records import CELL_FORMAT, CELL_KIND, cell_artifact, cell_identity, load_cell, run_cell, sweep_table
from ddlib.sweep.run import SweepReport, run_sweep
from ddlib.sweep.selection import KDE_CHOICES, RecordRunner, default_choice, validation_choice
from ddlib.sweep.status import SweepStatus, cell_work, format_status, sweep_status

__all__ = ["CELL_FORMAT", "CELL_KIND", "EXECUTORS", "GROUPS", "KDE_CHOICES", "NOTEBOOK_GROUPS", "PERMANENT",
           "ExecutorSettings", "RecordRunner", "SweepCell", "SweepReport", "SweepStatus", "absent_datasets",
           "cell_artifact", "cell_identity", "cell_work", "default_choice", "expand_grid", "format_status",
           "grid_datasets", "load_cell", "main_ratio", "make_executor", "permanent_errors", "run_cell",
           "run_cell_job", "run_sweep", "sweep_status", "sweep_table", "validation_choice"]
