"""Matching training trajectories (MTT, Cazenavette et al. 2022), with optional weighted experts.

**Experts.** ConvNets trained on the real training set with plain SGD (lr 0.01, no momentum, no
weight decay, DSA per sample); the flattened parameters after every epoch form the expert's
trajectory ``θ*_0 … θ*_E``. Every expert is its own cached artifact, keyed by the data set, the
training settings, the per-sample weights and the expert's index — so every distillation run
with the same data and settings reuses them, and raising the count only trains the new ones.
Optional per-sample weights enter the expert's loss as ``Σ_i w_i CE_i / Σ_i w_i`` per batch.

**Distillation.** Per iteration a random expert and start epoch ``t < max_start_epoch``; the
student starts at ``θ*_t`` and takes ``syn_steps`` SGD steps on batches of ``batch_syn`` synthetic
images (DSA per sample) with a learnable step size ``α`` (initialised to ``lr_teacher``); the loss

    ‖θ̂ − θ*_{t+M}‖² / ‖θ*_t − θ*_{t+M}‖²,   M = expert_epochs,

is minimised by SGD (momentum 0.5) on the images (``lr_img``) and on ``α`` (``lr_lr``). The student
is unrolled with :func:`torch.func.functional_call` on a flat parameter vector, so every step is
differentiable w.r.t. the images and ``α``.

**Memory (CIFAR-10, IPC 50, paper settings, one 80 GB GPU).** The unrolled student keeps, for each
of the 30 steps, the activations of its forward pass *and* of its differentiable gradient (the
double-backward graph) for all 500 synthetic images. Counting the bytes autograd saves
(``python -m ddlib.tools.benchmark_methods --mtt-memory``, ConvNet-3 width 128 on 3×32×32) gives
3.0 MiB per synthetic image per step, i.e. ≈ 44 GiB for 500 images × 30 steps — under 80 GB,
but only an estimate (the allocator, the CUDA context, DSA temporaries and the backward pass's
own buffers come on top; not measured on a GPU here). To be safe the paper profile sets
``checkpoint_steps=True``: each synthetic step is wrapped in
:func:`torch.utils.checkpoint.checkpoint` (non-reentrant), so only the step's inputs are kept
(the flat parameter vector, 1.3 MB, and the augmented batch) and one step's graph is rebuilt
during the backward pass: ≈ 1.5 GiB at a time instead of 44 GiB, for one extra forward and
gradient per step (measured ≈ 1.25× the time on the CPU: ConvNet-3 width 32, 100 images,
5 steps; the loss and gradients are identical, see ``tests/test_mtt.py``). ``batch_syn`` below the synthetic-set size is a second lever (fewer
images per step) but it changes the algorithm, so the paper profile keeps the full batch.

**ZCA (``MTTConfig.zca``).** MTT's CIFAR settings (``lr_img`` 100 / 1000 …) assume ZCA-whitened
inputs (its CIFAR examples run with ``--zca``). The whitening is a property of the *data set*, not
of this module: with ``zca=True`` the experiments run MTT — experts, distillation and the
evaluation of its sets — on :func:`mtt_dataset` of the data set, i.e. :func:`ddlib.datasets.zca.with_zca`
(ε = 0.1) for data sets named in :data:`ZCA_DATASETS` (``corrupted_cifar10``) and the data set itself
for the others. A run with ``zca=True`` on an un-whitened data set of that list is refused.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.utils.checkpoint import checkpoint as activation_checkpoint

from ddlib.core.validation import AT_LEAST_ONE, MOMENTUM, NON_NEGATIVE, POSITIVE, NonEmpty, check_config
from ddlib.augment import DSA
from ddlib.core.cache import ArtifactDir, save_torch, tensor_digest
from ddlib.datasets import BiasedDataset
from ddlib.models import ConvNetConfig, build_convnet
from ddlib.models.convnet import NUMERICS
from ddlib.core.device import numerics_identity
from ddlib.core.progress import bar_label, progress as progress_bar, weighting_tag
from ddlib.core.seeding import torch_generator
from ddlib.distill.driver import DistillationMethod, run_distillation
from ddlib.distill.synthetic import SyntheticSet
from ddlib.training.loop import train_one_epoch
from ddlib.training.objectives import SupervisedRun
from ddlib.weighting.base import SampleWeighter, weighter_config


# -- configuration -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExpertConfig:
    """How expert trajectories are trained (defaults: the reference's buffer settings)."""

    count: int = 100
    epochs: int = 50
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 256
    dsa: bool = True
    model: ConvNetConfig = ConvNetConfig()
    # Train on a fixed random subset of this many samples (CPU profiles); None = the whole set.
    max_train_samples: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_config(self, count=AT_LEAST_ONE, epochs=AT_LEAST_ONE, lr=POSITIVE, momentum=MOMENTUM,
                     weight_decay=NON_NEGATIVE, batch_size=AT_LEAST_ONE, max_train_samples=AT_LEAST_ONE,
                     seed=NON_NEGATIVE)


@dataclass(frozen=True)
class MTTSchedule:
    """The IPC-dependent MTT settings. ``batch_syn=None``: all synthetic images in every step."""

    ipc: int
    syn_steps: int
    expert_epochs: int
    max_start_epoch: int
    lr_img: float
    lr_lr: float
    lr_teacher: float
    batch_syn: int | None = None

    def __post_init__(self) -> None:
        check_config(self, ipc=AT_LEAST_ONE, syn_steps=AT_LEAST_ONE, expert_epochs=AT_LEAST_ONE,
                     max_start_epoch=NON_NEGATIVE, lr_img=POSITIVE, lr_lr=NON_NEGATIVE, lr_teacher=POSITIVE,
                     batch_syn=AT_LEAST_ONE)


# CIFAR-10 settings of the reference implementation; its published examples disagree on lr_teacher for IPC 10/50
# (0.01 vs 0.001): 0.01, the experts' own learning rate, is used.
PAPER_SCHEDULES: tuple[MTTSchedule, ...] = (
    MTTSchedule(ipc=1, syn_steps=50, expert_epochs=2, max_start_epoch=2, lr_img=100.0, lr_lr=1e-7, lr_teacher=0.01),
    MTTSchedule(ipc=10, syn_steps=30, expert_epochs=2, max_start_epoch=20, lr_img=100.0, lr_lr=1e-5, lr_teacher=0.01),
    MTTSchedule(ipc=50, syn_steps=30, expert_epochs=2, max_start_epoch=40, lr_img=1000.0, lr_lr=1e-5, lr_teacher=0.01),
)


@dataclass(frozen=True)
class MTTConfig:
    """MTT settings: the experts, the per-IPC schedules and the distillation loop."""

    iterations: int = 5000
    schedules: tuple[MTTSchedule, ...] = PAPER_SCHEDULES
    momentum: float = 0.5
    dsa: bool = True
    model: ConvNetConfig = ConvNetConfig()
    experts: ExpertConfig = field(default_factory=ExpertConfig)
    # Memory strategy: recompute each unrolled step in the backward pass (see the module doc).
    checkpoint_steps: bool = False
    seed: int = 0
    checkpoint_every: int = 200
    # ZCA-whitened inputs on the data sets of ZCA_DATASETS (see the module doc and mtt_dataset)
    zca: bool = False

    def __post_init__(self) -> None:
        check_config(self, iterations=NON_NEGATIVE, schedules=NonEmpty(), momentum=MOMENTUM, seed=NON_NEGATIVE,
                     checkpoint_every=NON_NEGATIVE)
        if self.experts.model != self.model:
            raise ValueError("the experts and the student must share one ConvNet config "
                             f"(experts: {self.experts.model}, student: {self.model})")

    def schedule_for(self, ipc: int) -> MTTSchedule:
        """The schedule of the largest listed IPC ≤ ``ipc`` (else the smallest listed)."""
        table = sorted(self.schedules, key=lambda s: s.ipc)
        chosen = table[0]
        for s in table:
            if s.ipc <= ipc:
                chosen = s
        return chosen


ZCA_DATASETS = ("corrupted_cifar10",)  # where MTTConfig.zca whitens (MTT's CIFAR recipe)


def mtt_dataset(dataset: BiasedDataset, config: MTTConfig) -> BiasedDataset:
    """The data set MTT runs on (and its sets are evaluated on): ZCA-whitened when ``config.zca`` is
    on and the data set is one of :data:`ZCA_DATASETS`; otherwise ``dataset`` itself."""
    if config.zca and dataset.name in ZCA_DATASETS and dataset.whitening is None:
        from ddlib.datasets.zca import with_zca
        return with_zca(dataset)
    return dataset


# -- flat parameter vectors ----------------------------------------------------------------------
class FlatParams:
    """Maps a module's parameters to one flat vector and back (views, no copies)."""

    def __init__(self, module: nn.Module):
        self.names = [n for n, _ in module.named_parameters()]
        self.shapes = [p.shape for _, p in module.named_parameters()]
        self.numels = [p.numel() for _, p in module.named_parameters()]

    @property
    def size(self) -> int:
        return sum(self.numels)

    def flatten(self, module: nn.Module) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in module.parameters()])

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: t.view(s) for n, t, s in zip(self.names, flat.split(self.numels), self.shapes)}


# -- experts -------------------------------------------------------------------------------------
def expert_sample_weights(dataset: BiasedDataset, weighter: SampleWeighter | None) -> torch.Tensor | None:
    """Per-sample expert-loss weights from a :class:`SampleWeighter`.

    The weighter is asked for whole classes at once and its rows (summing to 1) are rescaled to
    sum to the class size, so the classes keep their share of the loss and uniform weights are 1."""
    if weighter is None:
        return None
    out = torch.zeros(len(dataset.train))
    for members in dataset.train.class_indices(dataset.num_classes):
        index = torch.from_numpy(members).view(1, -1)
        out[index[0]] = weighter(index)[0].float() * len(members)
    return out


def _weights_key(sample_weights: torch.Tensor | None, weights_config: dict[str, Any] | None) -> dict[str, Any]:
    if sample_weights is None:
        return {"kind": "none"}
    return {**(weights_config or {"kind": "vector"}), "sha256": tensor_digest(sample_weights.float())}


def _training_subset(dataset: BiasedDataset, config: ExpertConfig) -> torch.Tensor:
    n = len(dataset.train)
    if config.max_train_samples is None or config.max_train_samples >= n:
        return torch.arange(n)
    order = torch.randperm(n, generator=torch_generator(config.seed, "experts", "subset"))
    return order[:config.max_train_samples].sort().values


def train_expert(dataset: BiasedDataset, config: ExpertConfig, index: int,
                 sample_weights: torch.Tensor | None = None, device: torch.device | str = "cpu",
                 progress: bool = False) -> torch.Tensor:
    """Train expert ``index`` and return its trajectory ``[epochs + 1, n_params]`` (CPU, float32)."""
    device = torch.device(device)
    net = build_convnet(dataset.channels, dataset.num_classes, dataset.image_size, config.model,
                        torch_generator(config.seed, "expert", index, "init"), device)
    flat = FlatParams(net)
    optimizer = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    shuffle_gen = torch_generator(config.seed, "expert", index, "shuffle")
    aug_gen = torch_generator(config.seed, "expert", index, "dsa")
    dsa = DSA(dataset.dsa_strategy) if config.dsa else None
    subset = _training_subset(dataset, config)
    images = torch.from_numpy(dataset.train.images)
    targets = torch.from_numpy(dataset.train.targets).long()
    trajectory = [flat.flatten(net).cpu()]
    run = SupervisedRun(net, optimizer, sample_weights=sample_weights)
    for _ in progress_bar(range(config.epochs), desc=bar_label(dataset, f"MTT expert {index}{'' if sample_weights is None else '+weighted'}"),
                          disable=not progress, leave=False):
        order = subset[torch.randperm(len(subset), generator=shuffle_gen)]
        train_one_epoch(run, dataset, images, targets, order, config.batch_size, device, dsa, aug_gen)
        trajectory.append(flat.flatten(net).cpu())
    return torch.stack(trajectory)


def expert_artifact(dataset: BiasedDataset, config: ExpertConfig, index: int,
                    weights_key: dict[str, Any], device: torch.device | str = "cpu") -> ArtifactDir:
    training = {f.name: getattr(config, f.name) for f in fields(config) if f.name != "count"}
    return ArtifactDir("experts", {"dataset": dataset.fingerprint, "training": training, "weights": weights_key,
                                   "index": index, "numerics": NUMERICS, **numerics_identity(device),
                                   "format": 1}, code=(__name__,))


def load_experts(dataset: BiasedDataset, config: ExpertConfig, sample_weights: torch.Tensor | None = None,
                 weights_config: dict[str, Any] | None = None, device: torch.device | str = "cpu",
                 progress: bool = True, use_cache: bool = True) -> tuple[list[torch.Tensor], list[str]]:
    """The ``config.count`` expert trajectories (trained now only when not cached) and their cache keys.

    ``sample_weights``: one non-negative weight per training sample, or None (unweighted)."""
    if sample_weights is not None:
        if sample_weights.shape != (len(dataset.train),):
            raise ValueError(f"sample_weights must have one entry per training sample ({len(dataset.train)}), "
                             f"got shape {tuple(sample_weights.shape)}")
        if (sample_weights < 0).any() or not torch.isfinite(sample_weights).all():
            raise ValueError("sample_weights must be finite and non-negative")
    key = _weights_key(sample_weights, weights_config)
    trajectories, keys = [], []
    for i in progress_bar(range(config.count), desc=bar_label(dataset, f"MTT experts{weighting_tag(key)}"),
                          disable=not progress):
        artifact = expert_artifact(dataset, config, i, key, device)
        with artifact.lock() if use_cache else contextlib.nullcontext():  # one builder across processes
            if use_cache and artifact.is_complete():
                trajectory = torch.load(artifact.file("trajectory.pt"))
            else:
                t0 = time.perf_counter()
                trajectory = train_expert(dataset, config, i, sample_weights, device, progress)
                if use_cache:
                    artifact.commit({"trajectory.pt": save_torch(trajectory)},
                                    {"dataset": dataset.display_name, "index": i, "config": config, "weights": key,
                                     "train_seconds": time.perf_counter() - t0, "device": str(device)})
        trajectories.append(trajectory)
        keys.append(artifact.key)
    return trajectories, keys


# -- the matching loss ---------------------------------------------------------------------------
def parameter_distance_loss(student_end: torch.Tensor, start: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``‖θ̂ − θ*_{t+M}‖² / ‖θ*_t − θ*_{t+M}‖²`` (the reference divides both by n_params; it cancels)."""
    return ((student_end - target) ** 2).sum() / ((start - target) ** 2).sum()


def _student_step(net: nn.Module, flat_params: FlatParams, buffers: dict[str, torch.Tensor], flat: torch.Tensor,
                  syn_lr: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits = functional_call(net, (flat_params.unflatten(flat), buffers), (x,))
    (g,) = torch.autograd.grad(F.cross_entropy(logits, y), flat, create_graph=True)
    return flat - syn_lr * g


def unroll_student(net: nn.Module, start: torch.Tensor, syn: torch.Tensor, labels: torch.Tensor,
                   syn_lr: torch.Tensor, syn_steps: int, batch_syn: int | None, shuffle_gen: torch.Generator,
                   dsa: DSA | None = None, aug_gen: torch.Generator | None = None,
                   checkpoint_steps: bool = False) -> torch.Tensor:
    """``syn_steps`` differentiable SGD steps of the student from the flat parameters ``start``.

    Batches walk through random permutations of the synthetic set (``batch_syn`` images each, all
    when None), each augmented per sample; ``net`` only supplies the architecture."""
    flat_params = FlatParams(net)
    buffers = dict(net.named_buffers())
    flat = start.detach().clone().requires_grad_(True)
    n = len(syn)
    batch = n if batch_syn is None else min(batch_syn, n)
    chunks: list[torch.Tensor] = []
    for _ in range(syn_steps):
        if not chunks:
            chunks = list(torch.randperm(n, generator=shuffle_gen).split(batch))
        idx = chunks.pop(0).to(syn.device)
        x, y = syn[idx], labels[idx]
        if dsa is not None:
            x = dsa(x, aug_gen)
        if checkpoint_steps:
            flat = activation_checkpoint(_student_step, net, flat_params, buffers, flat, syn_lr, x, y,
                                         use_reentrant=False)
        else:
            flat = _student_step(net, flat_params, buffers, flat, syn_lr, x, y)
    return flat


def trajectory_loss(net: nn.Module, start: torch.Tensor, target: torch.Tensor, syn: torch.Tensor,
                    labels: torch.Tensor, syn_lr: torch.Tensor, syn_steps: int, batch_syn: int | None,
                    shuffle_gen: torch.Generator, dsa: DSA | None = None, aug_gen: torch.Generator | None = None,
                    checkpoint_steps: bool = False) -> torch.Tensor:
    """The MTT loss of one start point: unroll the student, compare with the expert's target."""
    end = unroll_student(net, start, syn, labels, syn_lr, syn_steps, batch_syn, shuffle_gen, dsa, aug_gen,
                         checkpoint_steps)
    return parameter_distance_loss(end, start, target)


# -- the method ---------------------------------------------------------------------------------
class TrajectoryMatchingMethod(DistillationMethod):
    """MTT's iteration: a random expert and start epoch, the unrolled student, one step on the
    images and one on the learnable student step size."""

    name, stream = "MTT", "mtt"
    streams = ("expert-and-epoch", "syn-batches", "dsa")

    def __init__(self, dataset: BiasedDataset, ipc: int, config: MTTConfig, weighter: SampleWeighter | None,
                 device: torch.device, sample_weights: torch.Tensor | None = None,
                 on_step: Callable[[int, float], None] | None = None):
        super().__init__(dataset, ipc, config, weighter, device)
        if weighter is not None and sample_weights is not None:
            raise ValueError("pass either a weighter or sample_weights, not both")
        self.schedule = schedule = config.schedule_for(ipc)
        if config.experts.epochs < schedule.max_start_epoch + schedule.expert_epochs:
            raise ValueError(f"experts trained for {config.experts.epochs} epochs cannot supply start epochs "
                             f"< {schedule.max_start_epoch} plus {schedule.expert_epochs} target epochs; raise "
                             f"ExpertConfig.epochs to ≥ {schedule.max_start_epoch + schedule.expert_epochs} or lower "
                             f"max_start_epoch")
        self.sample_weights = expert_sample_weights(dataset, self.weighter) if weighter is not None else sample_weights
        self.on_step = on_step
        self.dsa = DSA(dataset.dsa_strategy) if config.dsa else None
        if config.zca and dataset.name in ZCA_DATASETS and dataset.whitening is None:
            raise ValueError(f"MTTConfig.zca is on but {dataset.display_name} is not whitened: run MTT on "
                             "mtt_dataset(dataset, config) (ddlib.datasets.zca.with_zca) and evaluate its sets there")

    def cache_key(self) -> dict[str, Any]:
        key = super().cache_key()
        # ``zca`` enters the key only when on (the whitened data set's fingerprint differs anyway):
        # sets distilled before the field existed keep their keys
        if not self.config.zca:
            key["config"] = {f.name: getattr(self.config, f.name) for f in fields(self.config) if f.name != "zca"}
        return key

    def weights_key(self) -> dict[str, Any]:
        return _weights_key(self.sample_weights, None if self.weighter is None else weighter_config(self.weighter))

    def prepare(self, progress: bool, use_cache: bool) -> None:
        self.experts, self.expert_keys = load_experts(
            self.dataset, self.config.experts, self.sample_weights,
            None if self.weighter is None else weighter_config(self.weighter), self.device, progress, use_cache)
        # The student's architecture; its own parameters are never used (the expert's are).
        ds = self.dataset
        self.net = build_convnet(ds.channels, ds.num_classes, ds.image_size, self.config.model,
                                 torch_generator(self.config.seed, "mtt", "architecture"), self.device)
        self.net.requires_grad_(False)

    def learnables(self, syn: torch.Tensor):
        schedule = self.schedule
        self.labels = torch.arange(self.dataset.num_classes, device=syn.device).repeat_interleave(self.ipc)
        self.syn_lr = torch.tensor(schedule.lr_teacher, device=syn.device).requires_grad_(True)
        self.opt_img = torch.optim.SGD([syn], lr=schedule.lr_img, momentum=self.config.momentum)
        self.opt_lr = torch.optim.SGD([self.syn_lr], lr=schedule.lr_lr, momentum=self.config.momentum)
        return {"images": syn, "syn_lr": self.syn_lr}, {"images": self.opt_img, "syn_lr": self.opt_lr}

    def iteration(self, it: int, syn: torch.Tensor, gens: dict[str, torch.Generator]) -> torch.Tensor:
        s = self.schedule
        e = int(torch.randint(len(self.experts), (1,), generator=gens["expert-and-epoch"]))
        t = int(torch.randint(s.max_start_epoch, (1,), generator=gens["expert-and-epoch"]))
        start_params = self.experts[e][t].to(self.device)
        target_params = self.experts[e][t + s.expert_epochs].to(self.device)
        loss = trajectory_loss(self.net, start_params, target_params, syn, self.labels, self.syn_lr, s.syn_steps,
                               s.batch_syn, gens["syn-batches"], self.dsa, gens["dsa"], self.config.checkpoint_steps)
        self.opt_img.zero_grad(set_to_none=True)
        self.opt_lr.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_img.step()
        self.opt_lr.step()
        if self.on_step is not None:
            self.on_step(it, float(loss.detach()))
        return loss.detach()

    def postfix(self, losses: list[float]) -> dict[str, str]:
        return {"loss": f"{sum(losses[-10:]) / 10:.4f}", "lr": f"{float(self.syn_lr.detach()):.2e}"}

    def provenance(self, losses: list[float]) -> dict[str, Any]:
        return {"schedule": self.schedule, "expert_keys": self.expert_keys, "loss_every_10": losses[::10],
                "final_syn_lr": float(self.syn_lr.detach())}


def distill_mtt(dataset: BiasedDataset, ipc: int, config: MTTConfig, weighter: SampleWeighter | None = None,
                device: torch.device | str = "cpu", progress: bool = True, use_cache: bool = True,
                sample_weights: torch.Tensor | None = None,
                on_step: Callable[[int, float], None] | None = None) -> SyntheticSet:
    """Distil ``ipc`` images per class by trajectory matching.

    Real-sample weights act on the experts' loss: pass a ``weighter`` (turned into per-sample
    weights by :func:`expert_sample_weights`) or a ready ``sample_weights`` vector [N_train].
    ``on_step(iteration, loss)`` is called after every image step (tests and benchmarks)."""
    method = TrajectoryMatchingMethod(dataset, ipc, config, weighter, torch.device(device), sample_weights, on_step)
    return run_distillation(method, progress, use_cache)
