"""A profile's grid at the smoke profile's budgets: :func:`with_smoke_budgets`.

Every setting of a profile is one of two kinds. Its *grid* (data sets, ratios, IPCs, methods,
weightings and competitors, the selection's candidate lists, the surrogate variants, ZCA, the
network's depth and norm, MTT's memory strategy, the stages' own networks) decides which code runs;
its *budgets* (iterations, epochs, networks per evaluation, samples, the network's width, seeds)
only decide how long. :data:`SMOKE_BUDGETS` lists the budgets by dotted path; ``with_smoke_budgets``
gives every network the smoke network's width, copies the budgets from the smoke profile into
another profile and keeps the rest. ``paper`` at smoke budgets runs every code path of the paper's
grid in seconds per cell on a CPU, so a CI test can execute one cell of each kind
(``tests/test_paper_cell_kinds.py``) before a GPU run meets it.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
from typing import Any

from ddlib.profiles.overrides import with_overrides
from ddlib.profiles.profile import Profile, network_paths
from ddlib.profiles.table import PROFILES

# The settings that only decide how long a run takes, by dotted path (everything else is the grid),
# beside the network's width: that one is set first, on the profile's network (which reaches every
# stage) and on the stages' own networks (``own_networks``), so the budgets copied after it keep it.
SMOKE_BUDGETS: tuple[str, ...] = (
    "seeds",
    "evaluation.train.epochs", "evaluation.n_models", "full_data",
    "datasets.train_per_class", "datasets.test_per_class", "datasets.grid_per_class",
    "dc.iterations", "dc.loops", "dc.batch_real", "dc.checkpoint_every",
    "mtt.iterations", "mtt.schedules", "mtt.experts", "mtt.checkpoint_every",
    "kde_method.surrogate.max_samples", "kde_method.surrogate.batch_size", "kde_method.surrogate.projection_dim",
    "kde_method.dm.iterations", "kde_method.dm.batch_real", "kde_method.dm.checkpoint_every",
    "kde_method.error_set", "kde_method.error_set_max_samples", "kde_method.diagnostic_batches",
    "kde_method.projection_samples", "kde_method.selection.models",
    "debiasing.validation_train", "debiasing.validation_models", "debiasing.validation_max_samples",
    "debiasing.selection_models", "debiasing.bias_classifier", "debiasing.bias_classifier_samples",
    "debiasing.eval_models",
)


def dotted_get(config: Any, path: str) -> Any:
    """The value at ``path`` ("a.b.c") of nested frozen dataclasses."""
    for name in path.split("."):
        config = getattr(config, name)
    return config


def dotted_replace(config: Any, path: str, value: Any) -> Any:
    """``config`` with the field at ``path`` replaced by ``value`` (every dataclass on the way copied).
    Not :func:`~ddlib.profiles.overrides.with_overrides`: there ``None`` means "keep the value", and a
    budget of ``None`` (e.g. "all samples") must be copied as it is."""
    head, _, rest = path.partition(".")
    if not is_dataclass(config) or head not in {f.name for f in fields(config)}:
        raise KeyError(f"{type(config).__name__} has no field {head!r} (path {path!r})")
    return replace(config, **{head: dotted_replace(getattr(config, head), rest, value) if rest else value})


def with_smoke_budgets(profile: Profile, smoke: Profile | None = None) -> Profile:
    """``profile``'s grid with the budgets of ``smoke`` (default: the smoke profile): the same cells,
    code paths and candidate lists, each run at a few iterations and epochs on small data slices.
    The name gains ``@smoke-budgets``, so nothing mistakes its results for the profile's."""
    if smoke is None:
        smoke = PROFILES["smoke"]
    # every network at the smoke width, as --set does it: the profile's network reaches every stage, and a
    # stage's own network keeps its depth and norm
    widths = {f"{path}.width": smoke.model.width for path in ("model", *profile.own_networks)}
    out = with_overrides(profile, widths)
    for path in SMOKE_BUDGETS:
        out = dotted_replace(out, path, _with_networks_of(dotted_get(smoke, path), dotted_get(out, path)))
    return replace(out, name=f"{profile.name}@smoke-budgets",
                   description=f"{profile.description}, at the smoke profile's budgets")


def _with_networks_of(value: Any, target: Any) -> Any:
    """The smoke profile's ``value`` with the networks inside it (an evaluation's, the experts') put back
    to ``target``'s: a budget never changes a network's depth or norm."""
    for path, net in network_paths(target):
        value = net if not path else dotted_replace(value, path, net)
    return value
