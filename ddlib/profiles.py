"""Run profiles, defined in this one place.

* ``smoke`` — seconds to a few minutes per notebook on 2 CPU cores: CI and nbval.
* ``quick`` — the README's main job on a laptop CPU: minutes per notebook, large enough to show
  the paper's qualitative findings (smaller networks and far fewer iterations than the paper).
* ``paper`` — the paper's / the reference implementations' settings, for a GPU.
* ``headline`` — ``paper`` cut to the headline cell (Colored MNIST 5 %, IPC 50, DM vs DM + KDE).

A notebook's ``parameters`` cell names a profile (default: ``$DDLIB_PROFILE`` or ``quick``) and
may override single fields with :func:`dataclasses.replace`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from typing import Any

from ddlib.core import env
from ddlib.core.notebook_parameters import check_kernel_parameters
from ddlib.core.validation import (AT_LEAST_ONE, FRACTION, NON_NEGATIVE, POSITIVE, ConfigError, NonEmpty, Range,
                                   check_config, coerce, field_hint)
from ddlib.distill.dc import REFERENCE_LOOPS, DCConfig
from ddlib.distill.dm import DMConfig
from ddlib.distill.mtt import PAPER_SCHEDULES, ExpertConfig, MTTConfig, MTTSchedule
from ddlib.models import ConvNetConfig
from ddlib.kde_supcon.kde import KDEConfig
from ddlib.kde_supcon.surrogate import SurrogateConfig
from ddlib.training.evaluation import EvalSettings, FullDataSettings
from ddlib.training.objectives import TrainConfig

PROFILE_ENV = env.PROFILE_ENV


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
    dm: DMConfig = DMConfig()  # DM settings of the re-weighted runs (its image lr: the selection's default)
    # Vanilla DM, the baseline, keeps the reference's image learning rate (1); everything else as ``dm``.
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


def _variants(lengths: tuple[float, ...], widths: tuple[int, ...] = (), embedding: bool = True,
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
    variants: tuple[SurrogateVariant, ...] = _variants((0.25, 3.0, 10.0), widths=(32, 128))
    seeds: tuple[int, ...] | None = None  # None: the profile's seeds
    eval_models: int | None = None        # None: the profile's evaluation models

    def __post_init__(self) -> None:
        check_config(self, datasets=NonEmpty(), conflict_ratio=FRACTION, ipc=AT_LEAST_ONE, variants=NonEmpty(),
                     seeds=NON_NEGATIVE, eval_models=AT_LEAST_ONE)

    def seeds_for(self, profile_seeds: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(self.seeds) if self.seeds else tuple(profile_seeds)

    def evaluation(self, base: EvalSettings) -> EvalSettings:
        return base if self.eval_models is None else replace(base, n_models=self.eval_models)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    model: ConvNetConfig
    dm: DMConfig
    evaluation: EvalSettings      # how every synthetic (or random real) set is judged
    full_data: FullDataSettings   # "no distillation": networks trained on the training set itself
    conflict_ratios: tuple[float, ...]
    ipcs: tuple[int, ...]
    seed: int = 0  # of the data sets' construction (colour jitter, corruptions)
    # Distillation seeds of every headline cell: each seed is one independent replicate (its own
    # initial images, batches, networks and evaluation models); intervals are over seeds.
    seeds: tuple[int, ...] = (0,)
    datasets: DatasetsConfig = DatasetsConfig()
    # Gradient matching (DC; DSA = the same with dsa=True) and trajectory matching.
    dc: DCConfig = DCConfig()
    mtt: MTTConfig = MTTConfig()
    # The paper's method: SupCon surrogate + KDE re-weighting (notebook 02).
    kde_method: KDEMethodConfig = KDEMethodConfig()
    # The bias analysis (notebook 01).
    analysis: BiasAnalysisConfig = BiasAnalysisConfig()
    # Training-time de-biasing (notebook 04).
    debiasing: DebiasingConfig = DebiasingConfig()
    # Which surrogate makes the KDE weights work (notebook 03).
    surrogate_ablation: SurrogateAblationConfig = SurrogateAblationConfig()

    def __post_init__(self) -> None:
        check_config(self, conflict_ratios=(NonEmpty(), FRACTION), ipcs=(NonEmpty(), AT_LEAST_ONE), seed=NON_NEGATIVE,
                     seeds=(NonEmpty(), NON_NEGATIVE))

    @property
    def summary(self) -> str:
        """What the profile is for and its main budgets, computed from its fields (never typed)."""
        m, e = self.model, self.evaluation
        return (f"{self.description}: ConvNet-{m.depth} width {m.width}, {self.dm.iterations:,} DM iterations, "
                f"{len(self.seeds)} seed(s) × {e.n_models} model(s) × {e.train.epochs:,} evaluation epochs")


_PAPER_MODEL = ConvNetConfig(depth=3, width=128, norm="instancenorm", pooling="avgpooling")
_QUICK_MODEL = ConvNetConfig(depth=3, width=32, norm="instancenorm", pooling="avgpooling")
_SMOKE_MODEL = ConvNetConfig(depth=2, width=8, norm="instancenorm", pooling="avgpooling")


def _schedules(syn_steps: int, expert_epochs: int, max_start: tuple[int, int, int],
               batch_syn: int | None = None) -> tuple[MTTSchedule, ...]:
    """The paper's per-IPC MTT learning rates with fewer steps, earlier start epochs and (optionally)
    at most ``batch_syn`` synthetic images per student step (CPU profiles)."""
    return tuple(MTTSchedule(ipc=s.ipc, syn_steps=syn_steps, expert_epochs=expert_epochs, max_start_epoch=m,
                             lr_img=s.lr_img, lr_lr=s.lr_lr, lr_teacher=s.lr_teacher, batch_syn=batch_syn)
                 for s, m in zip(PAPER_SCHEDULES, max_start))


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="CI: tiny networks; checks that everything runs, not results",
        model=_SMOKE_MODEL,
        dm=DMConfig(iterations=5, lr_img=1.0, batch_real=16, model=_SMOKE_MODEL, checkpoint_every=0),
        evaluation=EvalSettings(TrainConfig(epochs=4, batch_size=256, model=_SMOKE_MODEL), n_models=1),
        full_data=FullDataSettings(EvalSettings(TrainConfig(epochs=1, batch_size=128, model=_SMOKE_MODEL), n_models=1),
                                   max_samples=1000),
        datasets=DatasetsConfig(conflict_ratios=(0.05,), train_per_class=200, test_per_class=50,
                                grid_per_class=2),
        conflict_ratios=(0.05,),
        ipcs=(1,),
        analysis=BiasAnalysisConfig(methods=("DSA", "DM", "MTT"), unbiased_data=False),
        dc=DCConfig(iterations=2, loops=((1, 1, 1), (10, 2, 2), (50, 2, 1)), batch_real=16, model=_SMOKE_MODEL,
                    checkpoint_every=0),
        mtt=MTTConfig(iterations=3, schedules=_schedules(2, 1, (1, 1, 1)), model=_SMOKE_MODEL,
                      experts=ExpertConfig(count=1, epochs=2, batch_size=128, model=_SMOKE_MODEL,
                                           max_train_samples=500),
                      checkpoint_every=0),
    ),
    "quick": Profile(
        name="quick",
        description="the main job on a laptop CPU",
        model=_QUICK_MODEL,
        dm=DMConfig(iterations=100, lr_img=1.0, batch_real=64, model=_QUICK_MODEL, checkpoint_every=50),
        evaluation=EvalSettings(TrainConfig(epochs=80, batch_size=256, model=_QUICK_MODEL), n_models=3),
        # "no distillation": 3 networks on the whole training set, each until its validation accuracy has
        # not improved by 0.5 points for 2 quarter-epoch checks, at most 2 epochs (an epoch costs ~25 s
        # on 2 cores without augmentation; notebook 01's curves show whether a network stopped on a
        # plateau or at the cap: at the cap it is labelled as not converged)
        full_data=FullDataSettings(EvalSettings(TrainConfig(epochs=2, batch_size=256, dsa=False, model=_QUICK_MODEL),
                                                n_models=3),
                                   max_epochs=2, patience=2, min_delta=0.005, evals_per_epoch=4),
        conflict_ratios=(0.05,),
        # IPC 10 only, three seeds: notebook 01 runs 3 data sets × (random real + 3 methods) × 3 seeds
        # in about 20 min on 2 cores (IPC 1, 10 and 50, all four methods and five seeds in paper).
        ipcs=(10,),
        seeds=(0, 1, 2),
        # DM on every data set, DSA and MTT on Colored MNIST only (all of them everywhere in paper)
        analysis=BiasAnalysisConfig(datasets=("colored_mnist", "bg_fmnist", "corrupted_cifar10", "bffhq"),
                                    methods=("DSA", "DM", "MTT"), other_methods_datasets=("colored_mnist",),
                                    unbiased_data=False),
        # DC/DSA: 10 iterations, 32 real images per class, (outer, inner) cut to (4, 5) at IPC 10 and
        # (4, 2) at IPC 50 (the reference: 1,000 iterations, 256 images, (10, 50) and (50, 10)).
        dc=DCConfig(iterations=10, loops=((1, 1, 1), (10, 4, 5), (50, 4, 2)), batch_real=32, model=_QUICK_MODEL,
                    checkpoint_every=5),
        # MTT: 2 experts × 5 epochs on 10,000 training images (shared by the seeds); 20 iterations of 10
        # student steps on at most 100 synthetic images each (the reference: 100 experts × 50 epochs,
        # 5,000 iterations, 30-50 steps on all images).
        mtt=MTTConfig(iterations=20, schedules=_schedules(10, 2, (2, 3, 3), batch_syn=100), model=_QUICK_MODEL,
                      experts=ExpertConfig(count=2, epochs=5, model=_QUICK_MODEL, max_train_samples=10_000),
                      checkpoint_every=10),
    ),
    "paper": Profile(
        name="paper",
        description="the paper's settings (GPU)",
        model=_PAPER_MODEL,
        dm=DMConfig(iterations=20_000, lr_img=1.0, batch_real=256, model=_PAPER_MODEL, checkpoint_every=500),
        evaluation=EvalSettings(TrainConfig(epochs=1000, batch_size=256, model=_PAPER_MODEL), n_models=5),
        # "no distillation": 3 networks on the whole training set until their validation accuracy has not
        # improved by 0.1 point for 5 epochs (at most 50)
        full_data=FullDataSettings(EvalSettings(TrainConfig(epochs=50, batch_size=256, lr=0.01, model=_PAPER_MODEL),
                                                n_models=3),
                                   max_epochs=50, patience=5, min_delta=0.001),
        conflict_ratios=(0.005, 0.01, 0.02, 0.05),
        ipcs=(1, 10, 50),
        seeds=(0, 1, 2, 3, 4),
        # DC/DSA start from real images in every profile (DSA's examples; DC's own default is noise:
        # DCConfig(init="noise"))
        dc=DCConfig(iterations=1000, loops=REFERENCE_LOOPS, batch_real=256, model=_PAPER_MODEL, checkpoint_every=50),
        # checkpoint_steps: the memory strategy that fits CIFAR-10 IPC 50 on one 80 GB GPU (mtt.py).
        # zca: Corrupted CIFAR-10 ZCA-whitened for MTT, as the MTT reference's CIFAR settings assume
        mtt=MTTConfig(iterations=5000, schedules=PAPER_SCHEDULES, model=_PAPER_MODEL,
                      experts=ExpertConfig(count=100, epochs=50, model=_PAPER_MODEL), checkpoint_steps=True,
                      checkpoint_every=200, zca=True),
    ),
}


# The method's settings per profile (notebook 02). σ², τ, the surrogate's length, the re-weighted image
# lr and iterations are chosen per data set on the validation split by notebook 02 (``selection``);
# ``kde``, ``surrogate.epochs``, ``dm.lr_img`` and the iteration budgets are only the starting point.
_SMOKE_SURROGATE = SurrogateConfig(epochs=1, max_samples=512, batch_size=64, projection_dim=32, model=_SMOKE_MODEL)
# A briefly trained SupCon surrogate (one epoch on 20,000 images): still biased, so it isolates the
# conflicting samples.
_QUICK_SURROGATE = SurrogateConfig(epochs=1, max_samples=20_000, model=_QUICK_MODEL)
_PAPER_SURROGATE = SurrogateConfig(epochs=1, max_samples=20_000, model=ConvNetConfig(width=64))
_KDE_METHODS = {
    "smoke": KDEMethodConfig(
        surrogate=_SMOKE_SURROGATE, dm=PROFILES["smoke"].dm, ipcs=(1,), datasets=("colored_mnist",),
        methods=("DM", "DSA", "MTT"),
        selection=SelectionConfig(sigma2s=(0.1, 1.0), taus=(0.1,), surrogate_epochs=(0.5, 1.0), lr_imgs=(1.0,),
                                  iteration_fractions=(0.6, 1.0)),
        error_set=EvalSettings(TrainConfig(epochs=1, batch_size=128, dsa=False, model=_SMOKE_MODEL), n_models=1),
        error_set_max_samples=2000,
        diagnostic_batches=2, projection_samples=300),
    "quick": KDEMethodConfig(
        surrogate=_QUICK_SURROGATE,
        dm=replace(PROFILES["quick"].dm, lr_img=10.0),
        ipcs=(10,), datasets=("colored_mnist", "bg_fmnist", "corrupted_cifar10"), methods=("DM", "DSA", "MTT"),
        # DSA + KDE, MTT + KDE and the competitors on Colored MNIST only (the 60-minute budget); every data
        # set in paper
        other_methods_datasets=("colored_mnist",), competitor_datasets=("colored_mnist",),
        # coordinate-wise: σ² ∈ {0.1, 1} at τ 0.1, τ ∈ {0.1, 0.01}, surrogate 0.25 or 1 epoch, image lr, and
        # every re-weighted method's iterations (half or all of its budget)
        selection=SelectionConfig(sigma2s=(0.1, 1.0), taus=(0.1, 0.01), surrogate_epochs=(0.25, 1.0),
                                  lr_imgs=(1.0, 10.0), iteration_fractions=(0.5, 1.0)),
        error_set=EvalSettings(TrainConfig(epochs=1, batch_size=256, dsa=False, model=_QUICK_MODEL), n_models=1),
        diagnostic_batches=20, projection_samples=3000),
    "paper": KDEMethodConfig(
        surrogate=_PAPER_SURROGATE,
        dm=replace(PROFILES["paper"].dm, lr_img=10.0),
        ipcs=(1, 10, 50), methods=("DM", "DC", "DSA", "MTT"), competitor_methods=("DM", "DSA", "MTT"),
        selection=SelectionConfig(sigma2s=(0.01, 0.1, 1.0), taus=(1.0, 0.1, 0.01), surrogate_epochs=(0.25, 1.0, 3.0),
                                  lr_imgs=(1.0, 10.0), iteration_fractions=(0.25, 0.5, 1.0), models=3,
                                  method_lr_factors=(("DC", (1.0, 10.0, 100.0)), ("DSA", (1.0, 10.0, 100.0)),
                                                     ("MTT", (1.0, 10.0, 100.0)))),
        error_set=EvalSettings(TrainConfig(epochs=2, batch_size=256, dsa=False, model=_PAPER_MODEL), n_models=1)),
}
PROFILES = {name: replace(p, kde_method=_KDE_METHODS.get(name, p.kde_method)) for name, p in PROFILES.items()}
# Notebook 04 per profile: CPU budgets for smoke/quick (the methods' own settings in paper).
_DEBIASING = {
    "smoke": DebiasingConfig(
        validation_datasets=(("colored_mnist", 0.05),), validation_train=TrainConfig(epochs=2, batch_size=128, dsa=False),
        validation_models=1, validation_max_samples=1000, datasets=("colored_mnist",), ipcs=(1,), grid_size=1,
        bias_classifier=TrainConfig(epochs=1, batch_size=128, dsa=False, model=_SMOKE_MODEL),
        bias_classifier_samples=500),
    # quick: the two target cells only (full data: Colored MNIST 1 %; synthetic: Colored MNIST 5 %, IPC 10);
    # the other data sets run in paper. On the synthetic sets: ERM, LfF and JTT on the DM set, ERM and
    # JTT on the DM + KDE set, 3 seeds × 3 networks each (the profile's evaluation); DFA and SelecMix
    # (≈ 2.5 networks' cost each) run on the full data here and on the synthetic sets in paper.
    "quick": DebiasingConfig(
        validation_datasets=(("colored_mnist", 0.01),),
        validation_train=TrainConfig(epochs=10, batch_size=256, dsa=False), validation_models=3,
        validation_max_samples=30_000,
        datasets=("colored_mnist",), ipcs=(10,), grid_size=2,
        synthetic_methods=("ERM", "LfF", "JTT"),
        bias_classifier=TrainConfig(epochs=2, batch_size=128, dsa=False, model=_QUICK_MODEL)),
    "paper": DebiasingConfig(
        validation_datasets=(("colored_mnist", 0.01), ("colored_mnist", 0.05), ("bg_fmnist", 0.01),
                             ("bg_fmnist", 0.05)),
        ipcs=(10, 50), grid_size=2, validation_models=3,
        bias_classifier=TrainConfig(epochs=5, batch_size=256, dsa=False, model=_PAPER_MODEL)),
}
PROFILES = {name: replace(p, debiasing=_DEBIASING.get(name, p.debiasing)) for name, p in PROFILES.items()}
# Notebook 03 per profile. quick: Colored MNIST, the profile's 3 seeds × 3 evaluation networks:
# default, ERM encoder, untrained, 0.25 and 3 epochs (each surrogate is trained once and shared by the
# seeds). Embedding and width variants run in paper (and smoke, to exercise them).
_ABLATION = {
    "smoke": SurrogateAblationConfig(datasets=("colored_mnist",), ipc=1,
                                     variants=_variants((0.5, 2.0), widths=(4,)), seeds=(0,)),
    # quick: Colored MNIST only, the objective and training-length variants at 3 seeds (the whole quick
    # job has to stay within an hour); BG FMNIST, colour-free views, embedding and width in paper
    "quick": SurrogateAblationConfig(datasets=("colored_mnist",), ipc=10,
                                     variants=tuple(v for v in _variants((0.25, 3.0), embedding=False)
                                                    if v.label != "SupCon, no colour aug.")),
    "paper": SurrogateAblationConfig(datasets=("colored_mnist", "bg_fmnist", "corrupted_cifar10"), ipc=10,
                                     variants=_variants((0.25, 3.0, 10.0), widths=(32, 128))),
}
PROFILES = {name: replace(p, surrogate_ablation=_ABLATION.get(name, p.surrogate_ablation)) for name, p in PROFILES.items()}
# The paper's headline cell at the paper's settings, for one GPU (``./reproduce.sh --headline``,
# ddlib.tools.headline): Colored MNIST 5 %, IPC 50, the surrogate, vanilla DM and DM + KDE at
# 20,000 iterations, 5 evaluation models × 1,000 epochs. The fast device path is on by default on
# CUDA (device-resident DM, 5 models trained at once); precision stays fp32 until measured.
PROFILES["headline"] = replace(
    PROFILES["paper"], name="headline",
    description="the paper's headline (Colored MNIST 5 %, IPC 50, DM vs DM + KDE) at the paper's settings, one GPU",
    conflict_ratios=(0.05,), ipcs=(50,),
    kde_method=replace(PROFILES["paper"].kde_method, conflict_ratio=0.05, ipcs=(50,), methods=("DM",),
                       datasets=("colored_mnist",), competitors=()))


def with_overrides(config: Any, overrides: dict[str, Any]) -> Any:
    """``config`` with the fields named by dotted paths replaced (``{"kde_method.kde.tau": 0.05}``).

    ``None`` values are skipped, so a notebook's ``parameters`` cell can pass its parameters straight
    through (``None`` = keep the profile's value). Values are turned into the field's declared type
    where that is unambiguous (lists become tuples, whole numbers floats where a float is declared,
    :func:`ddlib.core.validation.coerce`) and then checked by the config itself; an unknown field, or
    a value of the wrong type or out of range, is a :class:`ConfigError` naming the dotted path."""
    return _with_overrides(config, overrides, "")


def _with_overrides(config: Any, overrides: dict[str, Any], prefix: str) -> Any:
    for path, value in overrides.items():
        if value is None:
            continue
        full = prefix + path
        head, _, rest = path.partition(".")
        if not dataclasses.is_dataclass(config) or head not in {f.name for f in dataclasses.fields(config)}:
            known = ", ".join(f.name for f in dataclasses.fields(config)) if dataclasses.is_dataclass(config) else "none"
            raise ConfigError(f"unknown setting {full!r} for {type(config).__name__}; its fields: {known}")
        if rest:
            new = _with_overrides(getattr(config, head), {rest: value}, f"{prefix}{head}.")
        else:
            new = coerce(value, field_hint(type(config), head))
        try:
            config = replace(config, **{head: new})
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"setting {full!r} = {value!r}: {exc}") from None
    return config


def get_profile(name: str | None = None, overrides: dict[str, Any] | None = None) -> Profile:
    """The named profile (``None`` means ``$DDLIB_PROFILE`` or ``quick``), with ``overrides``
    applied by :func:`with_overrides`.

    Every notebook builds its profile here first, so this is also where a notebook run by papermill
    with a parameter its ``parameters`` cell does not declare fails (papermill itself only warns;
    :mod:`ddlib.core.notebook_parameters`)."""
    check_kernel_parameters()
    origin = "the profile argument" if name else f"${env.PROFILE_ENV}"
    name = name or env.profile() or "quick"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r} (from {origin}); choose one of {', '.join(PROFILES)}")
    return with_overrides(PROFILES[name], overrides or {})
