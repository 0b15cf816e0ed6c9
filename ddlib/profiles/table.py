"""The profiles, one expression each: their networks and budgets.

A profile names its network once (``model``); :func:`~ddlib.profiles.profile.profile_with_network`
makes it the network of every stage not listed in ``own_networks``. The comments say why a budget is
what it is; the paper's values are the reference implementations' (docs/running.md, "Profiles").
"""

from __future__ import annotations

from dataclasses import replace

from ddlib.distill.dc import REFERENCE_LOOPS, DCConfig
from ddlib.distill.dm import DMConfig
from ddlib.distill.mtt import PAPER_SCHEDULES, ExpertConfig, MTTConfig, MTTSchedule
from ddlib.kde_supcon.surrogate import SurrogateConfig
from ddlib.models import ConvNetConfig
from ddlib.profiles.ablation import SurrogateAblationConfig, surrogate_variants
from ddlib.profiles.profile import Profile, profile_with_network
from ddlib.profiles.sections import (BeyondKDEConfig, BiasAnalysisConfig, DatasetsConfig, DebiasingConfig, KDEMethodConfig,
                                     SelectionConfig)
from ddlib.training.evaluation import EvalSettings, FullDataSettings
from ddlib.training.objectives import TrainConfig


def _schedules(syn_steps: int, expert_epochs: int, max_start: tuple[int, int, int],
               batch_syn: int | None = None) -> tuple[MTTSchedule, ...]:
    """The paper's per-IPC MTT learning rates with fewer steps, earlier start epochs and (optionally)
    at most ``batch_syn`` synthetic images per student step (CPU profiles)."""
    return tuple(MTTSchedule(ipc=s.ipc, syn_steps=syn_steps, expert_epochs=expert_epochs, max_start_epoch=m,
                             lr_img=s.lr_img, lr_lr=s.lr_lr, lr_teacher=s.lr_teacher, batch_syn=batch_syn)
                 for s, m in zip(PAPER_SCHEDULES, max_start))


# σ², τ, the surrogate's length, the re-weighted image lr and iterations are chosen per data set on the
# validation split by notebook 02 (``kde_method.selection``); ``kde``, ``surrogate.epochs``,
# ``dm.lr_img`` and the iteration budgets are only the starting point.
SMOKE = Profile(
    name="smoke",
    description="CI: tiny networks; checks that everything runs, not results",
    model=ConvNetConfig(depth=2, width=8, norm="instancenorm", pooling="avgpooling"),
    evaluation=EvalSettings(TrainConfig(epochs=4, batch_size=256), n_models=1),
    full_data=FullDataSettings(EvalSettings(TrainConfig(epochs=1, batch_size=128), n_models=1), max_samples=1000),
    datasets=DatasetsConfig(conflict_ratios=(0.05,), train_per_class=200, test_per_class=50, grid_per_class=2),
    conflict_ratios=(0.05,),
    ipcs=(1,),
    analysis=BiasAnalysisConfig(methods=("DSA", "DM", "MTT"), unbiased_data=False),
    dc=DCConfig(iterations=2, loops=((1, 1, 1), (10, 2, 2), (50, 2, 1)), batch_real=16, checkpoint_every=0),
    mtt=MTTConfig(iterations=3, schedules=_schedules(2, 1, (1, 1, 1)),
                  experts=ExpertConfig(count=1, epochs=2, batch_size=128, max_train_samples=500), checkpoint_every=0),
    kde_method=KDEMethodConfig(
        surrogate=SurrogateConfig(epochs=1, max_samples=512, batch_size=64, projection_dim=32),
        dm=DMConfig(iterations=5, lr_img=1.0, batch_real=16, checkpoint_every=0),
        ipcs=(1,), datasets=("colored_mnist",), methods=("DM", "DSA", "MTT"),
        selection=SelectionConfig(sigma2s=(0.1, 1.0), taus=(0.1,), surrogate_epochs=(0.5, 1.0), lr_imgs=(1.0,),
                                  iteration_fractions=(0.6, 1.0)),
        error_set=EvalSettings(TrainConfig(epochs=1, batch_size=128, dsa=False), n_models=1),
        error_set_max_samples=2000, diagnostic_batches=2, projection_samples=300),
    debiasing=DebiasingConfig(
        validation_datasets=(("colored_mnist", 0.05),), validation_train=TrainConfig(epochs=2, batch_size=128, dsa=False),
        validation_models=1, validation_max_samples=1000, datasets=("colored_mnist",), ipcs=(1,), grid_size=1,
        bias_classifier=TrainConfig(epochs=1, batch_size=128, dsa=False), bias_classifier_samples=500),
    surrogate_ablation=SurrogateAblationConfig(datasets=("colored_mnist",), ipc=1,
                                               variants=surrogate_variants((0.5, 2.0), widths=(4,)), seeds=(0,)),
    beyond_kde=BeyondKDEConfig(datasets=("colored_mnist",), methods=("DM",), ipc=1, ess_factors=(1.0, 2.0),
                               knn_ks=(5,)),
)

QUICK = Profile(
    name="quick",
    description="the main job on a laptop CPU",
    model=ConvNetConfig(depth=3, width=32, norm="instancenorm", pooling="avgpooling"),
    evaluation=EvalSettings(TrainConfig(epochs=80, batch_size=256), n_models=3),
    # "no distillation": 3 networks on the whole training set, each until its validation accuracy has
    # not improved by 0.5 points for 2 quarter-epoch checks, at most 2 epochs (an epoch costs ~25 s
    # on 2 cores without augmentation; notebook 01's curves show whether a network stopped on a
    # plateau or at the cap: at the cap it is labelled as not converged)
    full_data=FullDataSettings(EvalSettings(TrainConfig(epochs=2, batch_size=256, dsa=False), n_models=3),
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
    dc=DCConfig(iterations=10, loops=((1, 1, 1), (10, 4, 5), (50, 4, 2)), batch_real=32, checkpoint_every=5),
    # MTT: 2 experts × 5 epochs on 10,000 training images (shared by the seeds); 20 iterations of 10
    # student steps on at most 100 synthetic images each (the reference: 100 experts × 50 epochs,
    # 5,000 iterations, 30-50 steps on all images).
    mtt=MTTConfig(iterations=20, schedules=_schedules(10, 2, (2, 3, 3), batch_syn=100),
                  experts=ExpertConfig(count=2, epochs=5, max_train_samples=10_000), checkpoint_every=10),
    kde_method=KDEMethodConfig(
        # A briefly trained SupCon surrogate (one epoch on 20,000 images): still biased, so it isolates
        # the conflicting samples.
        surrogate=SurrogateConfig(epochs=1, max_samples=20_000),
        dm=DMConfig(iterations=100, lr_img=10.0, batch_real=64, checkpoint_every=50),
        ipcs=(10,), datasets=("colored_mnist", "bg_fmnist", "corrupted_cifar10"), methods=("DM", "DSA", "MTT"),
        # DSA + KDE, MTT + KDE and the competitors on Colored MNIST only (the 60-minute budget); every data
        # set in paper
        other_methods_datasets=("colored_mnist",), competitor_datasets=("colored_mnist",),
        # coordinate-wise: σ² ∈ {0.1, 1} at τ 0.1, τ ∈ {0.1, 0.01}, surrogate 0.25 or 1 epoch, image lr, and
        # every re-weighted method's iterations (half or all of its budget)
        selection=SelectionConfig(sigma2s=(0.1, 1.0), taus=(0.1, 0.01), surrogate_epochs=(0.25, 1.0),
                                  lr_imgs=(1.0, 10.0), iteration_fractions=(0.5, 1.0)),
        error_set=EvalSettings(TrainConfig(epochs=1, batch_size=256, dsa=False), n_models=1),
        diagnostic_batches=20, projection_samples=3000),
    # quick: the two target cells only (full data: Colored MNIST 1 %; synthetic: Colored MNIST 5 %, IPC 10);
    # the other data sets run in paper. On the synthetic sets: ERM, LfF and JTT on the DM set, ERM and
    # JTT on the DM + KDE set, 3 seeds × 3 networks each (the profile's evaluation); DFA and SelecMix
    # (≈ 2.5 networks' cost each) run on the full data here and on the synthetic sets in paper.
    debiasing=DebiasingConfig(
        validation_datasets=(("colored_mnist", 0.01),),
        validation_train=TrainConfig(epochs=10, batch_size=256, dsa=False), validation_models=3,
        validation_max_samples=30_000, datasets=("colored_mnist",), ipcs=(10,), grid_size=2,
        synthetic_methods=("ERM", "LfF", "JTT"), bias_classifier=TrainConfig(epochs=2, batch_size=128, dsa=False)),
    # Colored MNIST only, the objective and training-length variants at the profile's 3 seeds × 3
    # evaluation networks (each surrogate trained once, shared by the seeds; the whole quick job has to
    # stay within an hour); BG FMNIST, colour-free views, embedding and width in paper
    surrogate_ablation=SurrogateAblationConfig(
        datasets=("colored_mnist",), ipc=10,
        variants=tuple(v for v in surrogate_variants((0.25, 3.0), embedding=False) if v.label != "SupCon, no colour aug.")),
    # DM on the three data sets at IPC 10, kNN with one k (DSA on Colored MNIST and three k in paper)
    beyond_kde=BeyondKDEConfig(methods=("DM",), knn_ks=(10,)),
)

PAPER = Profile(
    name="paper",
    description="the paper's settings (GPU)",
    model=ConvNetConfig(depth=3, width=128, norm="instancenorm", pooling="avgpooling"),
    evaluation=EvalSettings(TrainConfig(epochs=1000, batch_size=256), n_models=5),
    # "no distillation": 3 networks on the whole training set until their validation accuracy has not
    # improved by 0.1 point for 5 epochs (at most 50)
    full_data=FullDataSettings(EvalSettings(TrainConfig(epochs=50, batch_size=256, lr=0.01), n_models=3),
                               max_epochs=50, patience=5, min_delta=0.001),
    conflict_ratios=(0.005, 0.01, 0.02, 0.05),
    ipcs=(1, 10, 50),
    seeds=(0, 1, 2, 3, 4),
    # DC/DSA start from real images in every profile (DSA's examples; DC's own default is noise:
    # DCConfig(init="noise"))
    dc=DCConfig(iterations=1000, loops=REFERENCE_LOOPS, batch_real=256, checkpoint_every=50),
    # checkpoint_steps: the memory strategy that fits CIFAR-10 IPC 50 on one 80 GB GPU (mtt.py).
    # zca: Corrupted CIFAR-10 ZCA-whitened for MTT, as the MTT reference's CIFAR settings assume
    mtt=MTTConfig(iterations=5000, schedules=PAPER_SCHEDULES, experts=ExpertConfig(count=100, epochs=50),
                  checkpoint_steps=True, checkpoint_every=200, zca=True),
    kde_method=KDEMethodConfig(
        # the surrogate's own network (own_networks below): width 64
        surrogate=SurrogateConfig(epochs=1, max_samples=20_000, model=ConvNetConfig(width=64)),
        dm=DMConfig(iterations=20_000, lr_img=10.0, batch_real=256, checkpoint_every=500),
        ipcs=(1, 10, 50), methods=("DM", "DC", "DSA", "MTT"), competitor_methods=("DM", "DSA", "MTT"),
        selection=SelectionConfig(sigma2s=(0.01, 0.1, 1.0), taus=(1.0, 0.1, 0.01), surrogate_epochs=(0.25, 1.0, 3.0),
                                  lr_imgs=(1.0, 10.0), iteration_fractions=(0.25, 0.5, 1.0), models=3,
                                  method_lr_factors=(("DC", (1.0, 10.0, 100.0)), ("DSA", (1.0, 10.0, 100.0)),
                                                     ("MTT", (1.0, 10.0, 100.0)))),
        error_set=EvalSettings(TrainConfig(epochs=2, batch_size=256, dsa=False), n_models=1)),
    # the methods' own settings
    debiasing=DebiasingConfig(
        validation_datasets=(("colored_mnist", 0.01), ("colored_mnist", 0.05), ("bg_fmnist", 0.01),
                             ("bg_fmnist", 0.05)),
        ipcs=(10, 50), grid_size=2, validation_models=3,
        bias_classifier=TrainConfig(epochs=5, batch_size=256, dsa=False)),
    surrogate_ablation=SurrogateAblationConfig(datasets=("colored_mnist", "bg_fmnist", "corrupted_cifar10"), ipc=10,
                                               variants=surrogate_variants((0.25, 3.0, 10.0), widths=(32, 128))),
    beyond_kde=BeyondKDEConfig(selection_models=3),
    own_networks=("kde_method.surrogate.model",),
)

# The paper's headline cell at the paper's settings, for one GPU (``./reproduce.sh --headline``,
# ddlib.tools.headline): Colored MNIST 5 %, IPC 50, the surrogate, vanilla DM and DM + KDE at
# 20,000 iterations, 5 evaluation models × 1,000 epochs. The fast device path is on by default on
# CUDA (device-resident DM, 5 models trained at once); precision stays fp32 until measured.
HEADLINE = replace(
    PAPER, name="headline",
    description="the paper's headline (Colored MNIST 5 %, IPC 50, DM vs DM + KDE) at the paper's settings, one GPU",
    conflict_ratios=(0.05,), ipcs=(50,),
    kde_method=replace(PAPER.kde_method, conflict_ratio=0.05, ipcs=(50,), methods=("DM",),
                       datasets=("colored_mnist",), competitors=()))

PROFILES: dict[str, Profile] = {p.name: profile_with_network(p) for p in (SMOKE, QUICK, PAPER, HEADLINE)}
