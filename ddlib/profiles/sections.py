"""The settings of each notebook's part of a profile: the data sets (notebook 00), the bias analysis
(01), the paper's method and its selection on the validation split (02) and training-time de-biasing
(04) and our weighters beyond the paper (05). Notebook 03's surrogate ablation is in
:mod:`ddlib.profiles.ablation`."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ddlib.core.validation import (AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, ConfigError, NonEmpty, Range,
                                   check_config)
from ddlib.distill.dm import DMConfig
from ddlib.kde_supcon.kde import KDEConfig
from ddlib.kde_supcon.surrogate import SurrogateConfig
from ddlib.training.evaluation import EvalSettings
from ddlib.training.objectives import TrainConfig
from ddlib.weighting.rarity import RarityWeightsConfig


@dataclass(frozen=True)
class DatasetsConfig:
    """What notebook 00 builds and shows (data sets, ratios, sizes)."""

    names: tuple[str, ...] = ("colored_mnist", "bg_fmnist", "corrupted_cifar10", "bffhq")
    # ratios whose count tables are shown (every data set is built at each)
    conflict_ratios: tuple[float, ...] = (0.005, 0.01, 0.02, 0.05)
    # None: the full data sets; a number keeps the first samples of every class (BG FMNIST, CIFAR)
    train_per_class: int | None = None
    test_per_class: int | None = None
    # CIFAR-10-C level 5 = LfF's / DFA's standard "severity4" Corrupted CIFAR-10
    corruption_severity: int = 5
    bffhq_image_size: int = 64
    grid_per_class: int = 4

    def __post_init__(self) -> None:
        check_config(self, names=NonEmpty(), conflict_ratios=(NonEmpty(), FRACTION), train_per_class=AT_LEAST_ONE,
                     test_per_class=AT_LEAST_ONE, corruption_severity=Range(1, 5), bffhq_image_size=Range(8),
                     grid_per_class=AT_LEAST_ONE)

    def options_for(self, name: str) -> dict[str, object]:
        """The builder options of data set ``name`` under this config (slices, BFFHQ's image size)."""
        from ddlib.datasets import dataset_info
        return dataset_info(name).pick_options(train_per_class=self.train_per_class,
                                               test_per_class=self.test_per_class, image_size=self.bffhq_image_size)


@dataclass(frozen=True)
class BiasAnalysisConfig:
    """Notebook 01: the data sets and methods of the bias analysis (ratios and IPCs: the profile's).

    Data sets are built as ``Profile.datasets`` says (slices in ``smoke``, full sets otherwise).
    Every distilled set is compared with IPC random real images per class (what the small set size
    alone does) and with the full data; ``unbiased_data`` also distils the unbiased variant of each
    data set, as context (accuracy without the bias)."""

    datasets: tuple[str, ...] = ("colored_mnist", "bg_fmnist", "corrupted_cifar10", "bffhq")
    methods: tuple[str, ...] = ("DC", "DSA", "DM", "MTT")
    # the data sets on which the methods other than DM run (None: every data set)
    other_methods_datasets: tuple[str, ...] | None = None
    unbiased_data: bool = True

    def __post_init__(self) -> None:
        check_config(self, datasets=NonEmpty(), methods=NonEmpty())

    def methods_for(self, dataset: str) -> tuple[str, ...]:
        """The methods run on ``dataset``: all of ``methods``, or DM only outside ``other_methods_datasets``."""
        if self.other_methods_datasets is None or dataset in self.other_methods_datasets:
            return self.methods
        return tuple(m for m in self.methods if m == "DM")


@dataclass(frozen=True)
class SelectionConfig:
    """What notebook 02 chooses on the *validation* split, per data set, before any test accuracy is
    read (:func:`ddlib.experiments.kde_supcon_distillation.select_kde_settings`), stage by stage, each
    at the choices of the stages before it: σ² (at the default τ ``kde_method.kde.tau``), τ, the
    surrogate's training length, every re-weighted method's image learning rate, and the re-weighted
    runs' iteration count. Each candidate is distilled at the first seed and judged by ``models``
    evaluation models on the validation split. The vanilla baselines are not tuned: they run the
    reference's image lr and the profile's iteration budget."""

    sigma2s: tuple[float, ...] = (0.1, 1.0)
    taus: tuple[float, ...] = (0.1, 0.01)
    # the SupCon surrogate's training length (epochs on its subset): a surrogate trained too long stops
    # seeing the bias, and the density no longer singles out the conflicting samples (notebook 03)
    surrogate_epochs: tuple[float, ...] = (0.25, 1.0)
    lr_imgs: tuple[float, ...] = (1.0, 10.0)
    # the re-weighted DC/DSA/MTT runs' image lr, as factors of the method's reference image lr (MTT: its
    # IPC schedule's initial one): images initialised from mostly bias-aligned real ones have to move
    # far, and the reference's lr barely moves them at short budgets
    method_lr_factors: tuple[tuple[str, tuple[float, ...]], ...] = (("DC", (1.0, 100.0)), ("DSA", (1.0, 100.0)),
                                                                    ("MTT", (1.0, 100.0)))
    # the re-weighted runs' iteration count, as fractions of the profile's budget (the budget is the
    # most a profile affords; validation may stop earlier), for ``iteration_methods`` (None: every method)
    iteration_fractions: tuple[float, ...] = (0.5, 1.0)
    iteration_methods: tuple[str, ...] | None = None
    models: int = 1

    def __post_init__(self) -> None:
        check_config(self, sigma2s=POSITIVE, taus=Range(0, low_open=True, allow_inf=True), surrogate_epochs=NON_NEGATIVE,
                     lr_imgs=POSITIVE, models=AT_LEAST_ONE)
        for name in ("sigma2s", "taus", "surrogate_epochs", "lr_imgs", "iteration_fractions"):
            if not getattr(self, name):
                raise ValueError(f"SelectionConfig.{name} needs at least one candidate")
        if any(not 0.0 < f <= 1.0 for f in self.iteration_fractions):
            raise ValueError(f"iteration fractions lie in (0, 1] (of the profile's budget), got {self.iteration_fractions}")
        for method, factors in self.method_lr_factors:
            if not factors or any(not f > 0 for f in factors):
                raise ConfigError(f"SelectionConfig.method_lr_factors expects at least one positive factor per "
                                  f"method, got {factors!r} for {method}")

    def lr_factors(self, method: str) -> tuple[float, ...]:
        """The image-lr factors tried for ``method`` (DC/DSA/MTT; (1.0,): the reference's lr only)."""
        return dict(self.method_lr_factors).get(method, (1.0,))


@dataclass(frozen=True)
class KDEMethodConfig:
    """The paper's method (notebook 02): the surrogate, the KDE weights and what they are run on."""

    surrogate: SurrogateConfig = SurrogateConfig()
    kde: KDEConfig = KDEConfig()   # the default before selection (and where a data set has no grid)
    # DM's settings, the one place for them: every DM run reads them, vanilla and re-weighted (notebooks
    # 01-04). Its image lr is the re-weighted runs' default (before the selection); vanilla DM, the
    # baseline, keeps the reference's image learning rate ``vanilla_dm_lr`` (1), everything else as ``dm``.
    dm: DMConfig = DMConfig()
    vanilla_dm_lr: float = 1.0
    conflict_ratio: float = 0.05
    ipcs: tuple[int, ...] = (1, 10, 50)
    # The main table: data sets × methods × {vanilla, KDE/SupCon}; the competitors run with
    # ``competitor_methods`` only (all three re-weight DM's real side like KDE does).
    datasets: tuple[str, ...] = ("colored_mnist", "bg_fmnist", "corrupted_cifar10", "bffhq")
    methods: tuple[str, ...] = ("DM", "DC", "DSA", "MTT")
    competitors: tuple[str, ...] = ("group-balanced", "error set", "conflicting only")
    competitor_methods: tuple[str, ...] = ("DM",)
    competitor_datasets: tuple[str, ...] | None = None  # where the competitors run (None: every data set)
    # the data sets on which the methods other than DM run (None: every data set of ``datasets``)
    other_methods_datasets: tuple[str, ...] | None = None
    selection: SelectionConfig = SelectionConfig()
    # error-set weights (JTT's idea): a briefly trained ERM network's misclassified training samples
    # weigh ``error_set_upweight`` times as much (the ERM network: ``error_set``)
    error_set: EvalSettings = EvalSettings(TrainConfig(epochs=1, batch_size=256, dsa=False), n_models=1)
    error_set_upweight: float = 20.0
    error_set_max_samples: int | None = None  # None: the ERM network sees the whole training set
    diagnostic_batches: int = 20
    projection_samples: int = 3000

    def __post_init__(self) -> None:
        check_config(self, vanilla_dm_lr=POSITIVE, conflict_ratio=FRACTION, ipcs=(NonEmpty(), AT_LEAST_ONE),
                     datasets=NonEmpty(), methods=NonEmpty(), error_set_upweight=POSITIVE,
                     error_set_max_samples=AT_LEAST_ONE, diagnostic_batches=NON_NEGATIVE,
                     projection_samples=NON_NEGATIVE)

    def dm_for(self, weighted: bool) -> DMConfig:
        """The DM settings of a re-weighted run (``dm``) or of the vanilla baseline (``dm`` at the
        reference's image learning rate ``vanilla_dm_lr``)."""
        return self.dm if weighted else replace(self.dm, lr_img=self.vanilla_dm_lr)


@dataclass(frozen=True)
class DebiasingConfig:
    """Notebook 04: training-time de-biasing (LfF, DFA, SelecMix, JTT) on full data and on DM synthetic sets."""

    methods: tuple[str, ...] = ("ERM", "LfF", "DFA", "SelecMix", "JTT")
    # 1. validation on the full biased training sets: same network (MLP), Adam, epochs for every method
    validation_datasets: tuple[tuple[str, float], ...] = (("colored_mnist", 0.01), ("colored_mnist", 0.05),
                                                          ("bg_fmnist", 0.01), ("bg_fmnist", 0.05))
    validation_model: str = "mlp"
    validation_adam_lr: float = 1e-3
    validation_train: TrainConfig = TrainConfig(epochs=100, batch_size=256, dsa=False)
    validation_models: int = 3
    validation_max_samples: int | None = None
    # 2. synthetic sets: DM (and DM + KDE) at this ratio, trained with the profile's evaluation protocol
    datasets: tuple[str, ...] = ("colored_mnist", "bg_fmnist", "corrupted_cifar10")
    conflict_ratio: float = 0.05
    ipcs: tuple[int, ...] = (10, 50)
    grid_size: int = 2            # candidates per method tried on the validation split (1: defaults only)
    selection_models: int = 1     # networks per candidate, trained on the DM set of the first seed
    # the methods trained on the synthetic sets (None: ``methods``) and the evaluation networks per
    # (set, seed, method) (None: the profile's ``EvalSettings.n_models``): the CPU budget's knobs
    synthetic_methods: tuple[str, ...] | None = None
    eval_models: int | None = None
    # 3. the bias-attribute classifier that estimates a set's conflicting share
    bias_classifier: TrainConfig = TrainConfig(epochs=2, batch_size=128, dsa=False)
    bias_classifier_samples: int | None = 20_000  # stratified real training images it learns from

    def __post_init__(self) -> None:
        check_config(self, methods=NonEmpty(), validation_adam_lr=POSITIVE, validation_models=AT_LEAST_ONE,
                     validation_max_samples=AT_LEAST_ONE, datasets=NonEmpty(), conflict_ratio=FRACTION,
                     ipcs=(NonEmpty(), AT_LEAST_ONE), grid_size=AT_LEAST_ONE, selection_models=AT_LEAST_ONE,
                     eval_models=AT_LEAST_ONE, bias_classifier_samples=AT_LEAST_ONE)

    @property
    def methods_on_synthetic(self) -> tuple[str, ...]:
        return self.methods if self.synthetic_methods is None else self.synthetic_methods

    def evaluation(self, base: EvalSettings) -> EvalSettings:
        """The profile's evaluation protocol with this notebook's number of networks."""
        return base if self.eval_models is None else replace(base, n_models=self.eval_models)


@dataclass(frozen=True)
class BeyondKDEConfig:
    """Notebook 05, beyond the paper: our label-free rarity weighters (ESS-KDE, kNN;
    :mod:`ddlib.weighting.rarity`) beside vanilla, the paper's KDE/SupCon weights and the bias-label
    oracles (conflicting-only, group-balanced, FairDD), on every data set of ``datasets`` with ``methods``
    (DM everywhere; the others only on ``other_methods_datasets``), at ``ipc`` and ``conflict_ratio``.

    Fair fight: KDE's settings are notebook 02's validation choice (σ², τ, surrogate length, image lr,
    iterations); each rarity weighter uses that same surrogate, image lr and iterations (ESS-KDE also
    KDE's σ²) and chooses only its own candidates on the
    validation split at the seed KDE's settings were chosen at (the profile's first), with
    ``selection_models`` networks per candidate. ``rarity`` is the setting a rarity cell takes when
    none is chosen.

    The candidate ESS fractions are ``ess_factors`` × the ESS share of KDE's chosen weights (their mean
    effective sample size over random class batches divided by the batch size, capped at 1): the
    candidates test the same overall concentration as KDE's (factor 1), equalised across classes, and
    a less and a more concentrated one; kNN also tries every k of ``knn_ks``."""

    datasets: tuple[str, ...] = ("colored_mnist", "bg_fmnist", "corrupted_cifar10")
    methods: tuple[str, ...] = ("DM", "DSA")
    other_methods_datasets: tuple[str, ...] | None = ("colored_mnist",)
    ipc: int = 10
    conflict_ratio: float = 0.05
    ess_factors: tuple[float, ...] = (0.5, 1.0, 2.0)
    knn_ks: tuple[int, ...] = (5, 10, 20)
    selection_models: int = 1
    oracles: tuple[str, ...] = ("conflicting only", "group-balanced", "FairDD")
    rarity: RarityWeightsConfig = RarityWeightsConfig()

    def __post_init__(self) -> None:
        check_config(self, datasets=NonEmpty(), methods=NonEmpty(), ipc=AT_LEAST_ONE, conflict_ratio=FRACTION,
                     ess_factors=(NonEmpty(), POSITIVE), knn_ks=(NonEmpty(), AT_LEAST_ONE),
                     selection_models=AT_LEAST_ONE)
        if "DM" not in self.methods:
            raise ConfigError("beyond_kde.methods must include DM (every data set runs it)")

    def methods_for(self, dataset: str) -> tuple[str, ...]:
        """DM on every data set; the other methods on ``other_methods_datasets`` (None: everywhere)."""
        if self.other_methods_datasets is None or dataset in self.other_methods_datasets:
            return self.methods
        return ("DM",)
