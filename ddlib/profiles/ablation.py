"""Notebook 03's part of a profile: which surrogate makes the KDE weights work (the variants and the
ablation's settings)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ddlib.core.validation import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, NonEmpty, check_config
from ddlib.kde_supcon.surrogate import SurrogateConfig
from ddlib.training.evaluation import EvalSettings


FAMILIES = ("default", "objective", "training length", "embedding", "width")


@dataclass(frozen=True)
class SurrogateVariant:
    """One surrogate of notebook 03's ablation: the profile's surrogate (``kde_method.surrogate``) with
    the fields that are not ``None`` replaced (``width``: the ConvNet's width). ``family`` says what it
    varies; ``datasets`` restricts it to some of the ablation's data sets (None: all of them)."""

    label: str
    family: str = "default"
    objective: str | None = None
    augment: str | None = None
    epochs: float | None = None
    embedding: str | None = None
    width: int | None = None
    datasets: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        check_config(self, epochs=NON_NEGATIVE, width=AT_LEAST_ONE)
        if self.family not in FAMILIES:
            raise ValueError(f"unknown variant family {self.family!r}; choose one of {FAMILIES}")

    def config(self, base: SurrogateConfig) -> SurrogateConfig:
        """The variant's surrogate: ``base`` with this variant's fields."""
        changes = {k: v for k, v in (("objective", self.objective), ("augment", self.augment),
                                     ("epochs", self.epochs), ("embedding", self.embedding)) if v is not None}
        if self.width is not None:
            changes["model"] = replace(base.model, width=self.width)
        return replace(base, **changes)

    def runs_on(self, dataset: str) -> bool:
        return self.datasets is None or dataset in self.datasets


def surrogate_variants(lengths: tuple[float, ...], widths: tuple[int, ...] = (), embedding: bool = True,
              only: tuple[str, ...] | None = None) -> tuple[SurrogateVariant, ...]:
    """The default SupCon surrogate, the objective family (ERM encoder, untrained ConvNet, SupCon
    without colour augmentation), training ``lengths`` (epochs), the encoder embedding and ``widths``;
    every family but the default and the lengths restricted to the data sets ``only`` (None: all)."""
    out = [SurrogateVariant("SupCon (default)", "default"),
           SurrogateVariant("ERM encoder", "objective", objective="erm", embedding="encoder", datasets=only),
           SurrogateVariant("untrained ConvNet", "objective", objective="erm", embedding="encoder", epochs=0,
                            datasets=only),
           SurrogateVariant("SupCon, no colour aug.", "objective", augment="geometric", datasets=only)]
    out += [SurrogateVariant(f"SupCon {e:g} ep.", "training length", epochs=e) for e in lengths]
    if embedding:
        out.append(SurrogateVariant("SupCon, encoder emb.", "embedding", embedding="encoder", datasets=only))
    out += [SurrogateVariant(f"SupCon width {w}", "width", width=w, datasets=only) for w in widths]
    return tuple(out)


@dataclass(frozen=True)
class SurrogateAblationConfig:
    """Notebook 03: which surrogate makes the KDE weights work, judged by the accuracy of the distilled
    set. Every variant is DM + KDE/SupCon at ``ipc`` and ``conflict_ratio`` with the profile's
    *default* KDE settings (``kde_method.kde``, re-weighted image lr ``kde_method.dm.lr_img``; notebook
    02 chooses them per data set on validation instead). A training-length variant whose epochs equal
    the default's is the default itself (run once)."""

    datasets: tuple[str, ...] = ("colored_mnist", "bg_fmnist")
    conflict_ratio: float = 0.05
    ipc: int = 10
    method: str = "DM"
    variants: tuple[SurrogateVariant, ...] = surrogate_variants((0.25, 3.0, 10.0), widths=(32, 128))
    seeds: tuple[int, ...] | None = None  # None: the profile's seeds
    eval_models: int | None = None        # None: the profile's evaluation models

    def __post_init__(self) -> None:
        check_config(self, datasets=NonEmpty(), conflict_ratio=FRACTION, ipc=AT_LEAST_ONE, variants=NonEmpty(),
                     seeds=NON_NEGATIVE, eval_models=AT_LEAST_ONE)

    def seeds_for(self, profile_seeds: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(self.seeds) if self.seeds else tuple(profile_seeds)

    def evaluation(self, base: EvalSettings) -> EvalSettings:
        return base if self.eval_models is None else replace(base, n_models=self.eval_models)
