"""Gradient matching: DC (Zhao et al. 2021) and DSA (Zhao & Bilen 2021), with optional real-side weights.

One *iteration* draws a fresh ConvNet and alternates ``outer`` times between

1. an image step: for every class ``c`` the gradient of the cross-entropy w.r.t. the network's
   weights on a real batch of the class, ``g_c^real = ∇_θ Σ_i w_ci CE(x_ci)`` (``w = 1/B``: vanilla
   DC), and on the class's synthetic images, ``g_c^syn = ∇_θ mean_j CE(s_cj)``; the loss
   ``Σ_c D(g_c^syn, g_c^real)`` (:mod:`.matching`) is minimised by SGD on the synthetic images;
2. ``inner`` epochs of SGD on the *network*, trained on the current synthetic set (skipped after
   the last outer step).

``(outer, inner)`` depend on the IPC (``1 → (1, 1)``, ``10 → (10, 50)``, ``50 → (50, 10)``). DSA is
the same with Siamese augmentation: a real batch and the synthetic images of its class share one
augmentation draw; the network's inner training augments each sample on its own.

Batching. The per-class gradients can be computed for all classes at once with
``torch.func.vmap(torch.func.grad(...))`` over the class axis (``batched=True``). That is exact
whenever a sample's output does not depend on the other samples in its batch — instance, group or
layer norm, or none (the ConvNets of the paper). Batch norm couples the samples of a batch (and
updates running statistics in place, which ``vmap`` cannot), so with ``norm="batchnorm"`` the
classes always go through the reference's per-class loop. On the CPU the vmap was measured
*slower* than the loop (one image step, ConvNet-3 width 32, 10 classes × 64 real images: 3.8 s vs
1.5 s; a whole quick-profile IPC-10 iteration: 6.2 s vs 4.9 s, ``benchmark_methods
--batched-classes``), so the default is the loop on the CPU and the vmap on CUDA (not measured
on a GPU yet). The inner network
training is sequential by nature.
One DSA draw per image step holds one augmentation *family* for all classes, with parameters per
class (the reference draws a family per class); the per-class loop uses the same draws, so both
paths compute the same loss.

Caching, checkpoints (after whole iterations), random streams and provenance come from the
shared driver (:mod:`ddlib.distill.driver`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from ddlib.core.validation import AT_LEAST_ONE, MOMENTUM, NON_NEGATIVE, POSITIVE, check_config
from ddlib.augment import DSA, AugmentParams
from ddlib.datasets import BiasedDataset
from ddlib.models import ConvNetConfig, build_convnet
from ddlib.distill.driver import INITS, DistillationMethod, run_distillation
from ddlib.distill.matching import METRICS, gradient_distance
from ddlib.distill.synthetic import SyntheticSet, class_index_tensors, sample_class_batches
from ddlib.weighting.base import SampleWeighter

# (ipc, outer loops, inner loops) of the reference; other IPCs use the entry of the largest
# listed IPC not above them (the reference only accepts listed IPCs).
REFERENCE_LOOPS: tuple[tuple[int, int, int], ...] = ((1, 1, 1), (10, 10, 50), (50, 50, 10))


@dataclass(frozen=True)
class DCConfig:
    """DC / DSA settings (defaults: the reference implementation's)."""

    iterations: int = 1000
    loops: tuple[tuple[int, int, int], ...] = REFERENCE_LOOPS
    lr_img: float = 0.1
    momentum_img: float = 0.5
    lr_net: float = 0.01
    batch_real: int = 256
    batch_train: int = 256  # batch size of the network's inner training on the synthetic set
    metric: str = "ours"
    dsa: bool = False
    model: ConvNetConfig = ConvNetConfig()
    seed: int = 0
    checkpoint_every: int = 50
    # How the synthetic images start: "real" (random real images of their class; DSA's examples,
    # DM, MTT) or "noise" (standard normal in the normalised space: the DC reference's own default).
    init: str = "real"

    def __post_init__(self) -> None:
        check_config(self, iterations=NON_NEGATIVE, lr_img=POSITIVE, momentum_img=MOMENTUM, lr_net=POSITIVE,
                     batch_real=AT_LEAST_ONE, batch_train=AT_LEAST_ONE, seed=NON_NEGATIVE,
                     checkpoint_every=NON_NEGATIVE)
        if self.init not in INITS:
            raise ValueError(f"unknown DC initialisation init={self.init!r}; choose one of {INITS}")
        if self.metric not in METRICS:
            raise ValueError(f"unknown gradient distance {self.metric!r}; choose one of {METRICS}")
        if not self.loops or any(len(e) != 3 or min(e) < 1 for e in self.loops):
            raise ValueError(f"loops must be (ipc, outer, inner) triples of positive integers, got {self.loops}")

    def loops_for(self, ipc: int) -> tuple[int, int]:
        """``(outer, inner)`` for ``ipc``: the entry of the largest listed IPC ≤ ``ipc`` (else the smallest)."""
        table = sorted(self.loops)
        chosen = table[0]
        for entry in table:
            if entry[0] <= ipc:
                chosen = entry
        return chosen[1], chosen[2]


# -- per-class gradients -------------------------------------------------------------------------
def _weighted_ce(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if weights is None:
        return F.cross_entropy(logits, labels)
    return (F.cross_entropy(logits, labels, reduction="none") * weights).sum()


def class_gradients(net: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                    weights: torch.Tensor | None = None, create_graph: bool = False,
                    batched: bool = True) -> list[torch.Tensor]:
    """Gradients of the (weighted) CE w.r.t. the network's parameters, one per class.

    ``images`` [C, B, ...], ``labels`` [C, B], ``weights`` [C, B] (rows summing to 1) or None
    (mean CE). Returns one tensor ``[C, *param.shape]`` per parameter. With ``create_graph`` the
    result stays differentiable w.r.t. ``images`` (the synthetic side); otherwise it is detached.
    The network's own parameters never receive gradients from here.
    """
    names = [n for n, _ in net.named_parameters()]
    if batched:
        params = {n: p.detach() for n, p in net.named_parameters()}
        buffers = dict(net.named_buffers())

        def loss(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
            return _weighted_ce(functional_call(net, (p, buffers), (x,)), y, w)

        w_dim = None if weights is None else 0
        g = vmap(grad(loss), in_dims=(None, 0, 0, w_dim))(params, images, labels, weights)
        out = [g[n] for n in names]
        return out if create_graph else [t.detach() for t in out]
    params = list(net.parameters())
    per_class = []
    for c in range(images.shape[0]):
        w = None if weights is None else weights[c]
        loss = _weighted_ce(net(images[c]), labels[c], w)
        per_class.append(torch.autograd.grad(loss, params, create_graph=create_graph))
    return [torch.stack([pc[k] for pc in per_class]) for k in range(len(params))]


def dc_loss(net: nn.Module, real: torch.Tensor, syn: torch.Tensor, weights: torch.Tensor | None = None,
            metric: str = "ours", dsa: DSA | None = None, params: AugmentParams | None = None,
            batched: bool = True) -> torch.Tensor:
    """The gradient-matching loss ``Σ_c D(g_c^syn, g_c^real)``.

    ``real`` [C, B, ...], ``syn`` [C, ipc, ...] (differentiable), ``weights`` [C, B] or None;
    ``params``: one Siamese DSA draw with one group per class (DSA), or None (DC)."""
    c, b = real.shape[:2]
    ipc = syn.shape[1]
    if dsa is not None and params is not None:
        real = dsa.apply(real.flatten(0, 1), params, torch.arange(c).repeat_interleave(b)).view_as(real)
        syn = dsa.apply(syn.flatten(0, 1), params, torch.arange(c).repeat_interleave(ipc)).view_as(syn)
    labels_of = lambda n: torch.arange(c, device=real.device).view(c, 1).expand(c, n)  # noqa: E731
    if weights is not None:
        weights = weights.to(device=real.device, dtype=real.dtype)
    g_real = class_gradients(net, real, labels_of(b), weights, create_graph=False, batched=batched)
    g_syn = class_gradients(net, syn, labels_of(ipc), None, create_graph=True, batched=batched)
    return gradient_distance(g_syn, g_real, metric, batched=True)


def _train_network_on_synthetic(net: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                                labels: torch.Tensor, epochs: int, batch: int, dsa: DSA | None,
                                shuffle_gen: torch.Generator, aug_gen: torch.Generator) -> None:
    """The inner loop: ``epochs`` epochs of SGD on the (detached) synthetic set, DSA per sample."""
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=shuffle_gen)
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            x = images[idx.to(images.device)]
            if dsa is not None:
                x = dsa(x, aug_gen)
            loss = F.cross_entropy(net(x), labels[idx.to(labels.device)])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


# -- the method ---------------------------------------------------------------------------------
class GradientMatchingMethod(DistillationMethod):
    """DC's / DSA's iteration: a fresh ConvNet, ``outer`` image steps, each followed (but the last)
    by ``inner`` epochs of the network's own training on the current synthetic set."""

    streams = ("networks", "real-batches", "dsa", "inner-shuffle")

    def __init__(self, dataset: BiasedDataset, ipc: int, config: DCConfig, weighter: SampleWeighter | None,
                 device: torch.device, batched: bool | None = None,
                 on_step: Callable[[int, int, float], None] | None = None):
        super().__init__(dataset, ipc, config, weighter, device)
        self.name = "DSA" if config.dsa else "DC"
        self.stream = self.name.lower()
        if batched is None:
            batched = device.type == "cuda" and config.model.norm != "batchnorm"
        if batched and config.model.norm == "batchnorm":
            raise ValueError("batched gradient matching is exact only without batch norm; pass batched=False")
        self.batched = batched
        self.on_step = on_step
        self.outer, self.inner = config.loops_for(ipc)
        self.members = class_index_tensors(dataset)
        self.train_images = torch.from_numpy(dataset.train.images)
        self.dsa = DSA(dataset.dsa_strategy) if config.dsa else None

    def cache_key(self) -> dict[str, Any]:
        key = super().cache_key()
        # ``init`` enters the key only when it is not the default: sets distilled before the field
        # existed (all from real images) keep their keys
        if self.config.init == "real":
            key["config"] = {f.name: getattr(self.config, f.name) for f in dataclasses.fields(self.config)
                             if f.name != "init"}
        return key

    def learnables(self, syn: torch.Tensor):
        self.optimizer = torch.optim.SGD([syn], lr=self.config.lr_img, momentum=self.config.momentum_img)
        self.labels = torch.arange(self.dataset.num_classes, device=syn.device).repeat_interleave(self.ipc)
        return {"images": syn}, {"images": self.optimizer}

    def iteration(self, it: int, syn: torch.Tensor, gens: dict[str, torch.Generator]) -> torch.Tensor:
        ds, c, config = self.dataset, self.dataset.num_classes, self.config
        net = build_convnet(ds.channels, c, ds.image_size, config.model, gens["networks"], self.device)
        net.train()
        net_optimizer = torch.optim.SGD(net.parameters(), lr=config.lr_net)
        total = syn.new_zeros(())
        for ol in range(self.outer):
            index = sample_class_batches(self.members, config.batch_real, gens["real-batches"])  # [C, B]
            real = ds.normalize(self.train_images[index.flatten()], self.device).view(*index.shape,
                                                                                      *self.train_images.shape[1:])
            weights = None if self.weighter is None else self.weighter(index)
            params = self.dsa.draw(c, gens["dsa"], ds.image_size[0]) if self.dsa is not None else None
            loss = dc_loss(net, real, syn.view(c, self.ipc, *syn.shape[1:]), weights, config.metric, self.dsa,
                           params, self.batched)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total = total + loss.detach()
            if self.on_step is not None:
                self.on_step(it, ol, float(loss.detach()))
            if ol == self.outer - 1:
                break
            _train_network_on_synthetic(net, net_optimizer, syn.detach().clone(), self.labels, self.inner,
                                        config.batch_train, self.dsa, gens["inner-shuffle"], gens["dsa"])
        return total / (self.outer * c)  # the reference's loss_avg: per outer step and class

    def provenance(self, losses: list[float]) -> dict[str, Any]:
        return {"loops": [self.outer, self.inner], "loss_per_iteration": losses, "batched_classes": self.batched}


def distill_dc(dataset: BiasedDataset, ipc: int, config: DCConfig, weighter: SampleWeighter | None = None,
               device: torch.device | str = "cpu", progress: bool = True, use_cache: bool = True,
               batched: bool | None = None,
               on_step: Callable[[int, int, float], None] | None = None) -> SyntheticSet:
    """Distil ``ipc`` images per class by gradient matching (DSA when ``config.dsa``).

    ``batched`` (default: on CUDA without batch norm) computes the per-class gradients in one
    ``vmap``; ``False`` runs the reference's class loop (same loss up to float rounding).
    ``on_step(iteration, outer, loss)`` is called after every image step (tests and benchmarks)."""
    method = GradientMatchingMethod(dataset, ipc, config, weighter, torch.device(device), batched, on_step)
    return run_distillation(method, progress, use_cache)
