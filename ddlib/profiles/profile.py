"""The :class:`Profile`: every setting of a run, one frozen tree, and its network in one place.

``Profile.model`` is the ConvNet of every stage (distillation, evaluation, experts, the surrogate, the
error-set and bias classifiers) except those listed by dotted path in ``Profile.own_networks`` (paper:
``kde_method.surrogate.model``, width 64). The profile table writes it once and
:func:`profile_with_network` puts it into every other stage, so ``--set model.width=64`` changes every
stage that uses the profile's network, and ``--set kde_method.surrogate.model.width=16`` gives the
surrogate a network of its own (:mod:`ddlib.profiles.overrides` adds the path to ``own_networks``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ddlib.core.validation import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, ConfigError, NonEmpty, check_config
from ddlib.distill.dc import DCConfig
from ddlib.distill.mtt import MTTConfig
from ddlib.models import ConvNetConfig
from ddlib.profiles.ablation import SurrogateAblationConfig
from ddlib.profiles.sections import BeyondKDEConfig, BiasAnalysisConfig, DatasetsConfig, DebiasingConfig, KDEMethodConfig
from ddlib.training.evaluation import EvalSettings, FullDataSettings



@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    model: ConvNetConfig          # the network of every stage that names no other (module docstring)
    evaluation: EvalSettings      # how every synthetic (or random real) set is judged
    full_data: FullDataSettings   # "no distillation": networks trained on the training set itself
    conflict_ratios: tuple[float, ...]
    ipcs: tuple[int, ...]
    seed: int = 0  # of the data sets' construction (colour jitter, corruptions)
    # Distillation seeds of every headline cell: each seed is one independent replicate (its own
    # initial images, batches, networks and evaluation models); intervals are over seeds.
    seeds: tuple[int, ...] = (0,)
    datasets: DatasetsConfig = DatasetsConfig()
    # Gradient matching (DC; DSA = the same with dsa=True) and trajectory matching. DM's settings are
    # ``kde_method.dm`` (every DM run reads them, vanilla and re-weighted).
    dc: DCConfig = DCConfig()
    mtt: MTTConfig = MTTConfig()
    # The paper's method: SupCon surrogate + KDE re-weighting (notebook 02), and DM's settings.
    kde_method: KDEMethodConfig = KDEMethodConfig()
    # The bias analysis (notebook 01).
    analysis: BiasAnalysisConfig = BiasAnalysisConfig()
    # Training-time de-biasing (notebook 04).
    debiasing: DebiasingConfig = DebiasingConfig()
    # Which surrogate makes the KDE weights work (notebook 03).
    surrogate_ablation: SurrogateAblationConfig = SurrogateAblationConfig()
    # Our label-free weighters beside KDE/SupCon and the oracles (notebook 05).
    beyond_kde: BeyondKDEConfig = BeyondKDEConfig()
    # the stages whose network is their own, not ``model`` (dotted paths, e.g. "kde_method.surrogate.model")
    own_networks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_config(self, conflict_ratios=(NonEmpty(), FRACTION), ipcs=(NonEmpty(), AT_LEAST_ONE), seed=NON_NEGATIVE,
                     seeds=(NonEmpty(), NON_NEGATIVE))
        paths = dict(network_paths(self))
        for path in self.own_networks:
            if path not in paths or path == "model":
                raise ConfigError(f"own_networks: {path!r} is not the network of a stage; the stages' networks: "
                                  f"{', '.join(p for p in paths if p != 'model')}")

    @property
    def summary(self) -> str:
        """What the profile is for and its main budgets, computed from its fields (never typed)."""
        m, e = self.model, self.evaluation
        return (f"{self.description}: ConvNet-{m.depth} width {m.width}, {self.kde_method.dm.iterations:,} DM "
                f"iterations, {len(self.seeds)} seed(s) × {e.n_models} model(s) × {e.train.epochs:,} evaluation epochs")


def network_paths(value: Any, prefix: str = "") -> list[tuple[str, ConvNetConfig]]:
    """Every network in ``value`` (a profile or part of one) by dotted path (tuple items as ``[i]``)."""
    if isinstance(value, ConvNetConfig):
        return [(prefix, value)]
    found: list[tuple[str, ConvNetConfig]] = []
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            found += network_paths(getattr(value, f.name), f"{prefix}.{f.name}" if prefix else f.name)
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            found += network_paths(item, f"{prefix}[{i}]")
    return found


def _with_network(value: Any, network: ConvNetConfig, own: frozenset[str], prefix: str) -> Any:
    if isinstance(value, ConvNetConfig):
        return value if prefix in own else network
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _with_network(getattr(value, f.name), network, own,
                                         f"{prefix}.{f.name}" if prefix else f.name)
                   for f in dataclasses.fields(value) if f.init}
        changed = {k: v for k, v in changes.items() if v != getattr(value, k)}
        return dataclasses.replace(value, **changed) if changed else value
    if isinstance(value, tuple):
        items = tuple(_with_network(v, network, own, f"{prefix}[{i}]") for i, v in enumerate(value))
        return items if items != value else value
    return value


def profile_with_network(profile: Profile) -> Profile:
    """``profile`` with ``profile.model`` as the network of every stage not in ``own_networks``."""
    own = frozenset(profile.own_networks) | {"model"}
    changed = {f.name: _with_network(getattr(profile, f.name), profile.model, own, f.name)
               for f in dataclasses.fields(profile) if f.name not in ("model", "own_networks")}
    changed = {k: v for k, v in changed.items() if v != getattr(profile, k)}
    return dataclasses.replace(profile, **changed) if changed else profile
