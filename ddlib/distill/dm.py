"""Distribution matching (DM, Zhao & Bilen 2023), with optional real-side sample weights.

Per iteration: a freshly initialised, frozen ConvNet ψ; for every class a batch of real images
and the class's synthetic images, augmented with one Siamese DSA draw per class; the loss is
``Σ_c ‖Σ_i w_ci ψ(A(x_ci)) − mean_j ψ(A(s_cj))‖²`` (``w = 1/B``: vanilla DM). All classes go
through ψ in one batched forward pass: instance norm normalises each sample on its own, so this
is exactly the per-class loop of the reference, only faster.

Progress is checkpointed (images, optimiser, generators) so an interrupted run resumes, and the
finished set is cached under its full configuration.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from ..progress import progress as progress_bar

from ..augment import DSA, AugmentParams
from ..cache import ArtifactDir
from ..datasets import BiasedDataset
from ..models import ConvNetConfig, build_convnet
from ..models.convnet import ConvNet
from ..seeding import torch_generator
from .checkpoint import RunState, load_finished, store_finished
from .synthetic import SyntheticSet, class_index_tensors, init_from_real, sample_class_batches
from .weights import SampleWeighter, weighter_config


@dataclass(frozen=True)
class DMConfig:
    """DM settings (defaults: the reference's, ``recipes.md``)."""

    iterations: int = 20_000
    lr_img: float = 1.0
    momentum: float = 0.5
    batch_real: int = 256
    dsa: bool = True
    model: ConvNetConfig = ConvNetConfig()
    seed: int = 0
    checkpoint_every: int = 200


# -- the loss ------------------------------------------------------------------------------------
def _augment_pair(dsa: DSA | None, params: AugmentParams | None, real: torch.Tensor, syn: torch.Tensor,
                  real_groups: torch.Tensor, syn_groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if dsa is None or params is None:
        return real, syn
    return dsa.apply(real, params, real_groups), dsa.apply(syn, params, syn_groups)


def embed_in_chunks(net: ConvNet, x: torch.Tensor, chunk: int | None) -> torch.Tensor:
    """``net.embed(x)`` computed ``chunk`` samples at a time (None: all at once).

    Every layer of the ConvNet acts on each sample alone (instance norm included), so chunking
    changes nothing but speed: on a CPU, activations of a few hundred images stay in cache, and
    one pass over thousands of images is several times slower (measured in ddlib.benchmark)."""
    if chunk is None or len(x) <= chunk or net.config.norm == "batchnorm":  # batch norm couples samples
        return net.embed(x)
    return torch.cat([net.embed(x[i:i + chunk]) for i in range(0, len(x), chunk)])


def default_embed_chunk(device: torch.device) -> int | None:
    return None if device.type == "cuda" else 128


def dm_loss(net: ConvNet, real: torch.Tensor, syn: torch.Tensor, weights: torch.Tensor | None = None,
            dsa: DSA | None = None, params: AugmentParams | None = None,
            embed_chunk: int | None = None) -> torch.Tensor:
    """Batched DM loss. ``real`` [C, B, ...], ``syn`` [C, ipc, ...], ``weights`` [C, B] or None;
    ``params`` holds one augmentation draw per class (group c ↔ class c); ``embed_chunk`` bounds
    how many real images go through the network at once (see :func:`embed_in_chunks`)."""
    c, b = real.shape[:2]
    ipc = syn.shape[1]
    real_groups = torch.arange(c).repeat_interleave(b)
    syn_groups = torch.arange(c).repeat_interleave(ipc)
    x_real, x_syn = _augment_pair(dsa, params, real.flatten(0, 1), syn.flatten(0, 1), real_groups, syn_groups)
    with torch.no_grad():
        emb_real = embed_in_chunks(net, x_real, embed_chunk).view(c, b, -1)
    emb_syn = net.embed(x_syn).view(c, ipc, -1)
    if weights is None:
        mean_real = emb_real.mean(dim=1)
    else:
        mean_real = (weights.to(emb_real.device, emb_real.dtype).unsqueeze(-1) * emb_real).sum(dim=1)
    return ((mean_real - emb_syn.mean(dim=1)) ** 2).sum()


def dm_loss_per_class(net: ConvNet, real: torch.Tensor, syn: torch.Tensor, weights: torch.Tensor | None = None,
                      dsa: DSA | None = None, params: AugmentParams | None = None,
                      embed_chunk: int | None = None) -> torch.Tensor:
    """The reference's formulation: one forward pass per class (for tests and benchmarks)."""
    total = syn.new_zeros(())
    for k in range(real.shape[0]):
        p = None if params is None else AugmentParams(params.family, params.values[k:k + 1])
        w = None if weights is None else weights[k:k + 1]
        total = total + dm_loss(net, real[k:k + 1], syn[k:k + 1], w, dsa, p)
    return total


# -- the distillation loop -----------------------------------------------------------------------
def _artifact(dataset: BiasedDataset, ipc: int, config: DMConfig, weighter: SampleWeighter | None) -> ArtifactDir:
    return ArtifactDir("synthetic/dm", {"dataset": dataset.fingerprint, "ipc": ipc, "config": config,
                                        "weights": weighter_config(weighter), "format": 1})


def distill_dm(dataset: BiasedDataset, ipc: int, config: DMConfig, weighter: SampleWeighter | None = None,
               device: torch.device | str = "cpu", progress: bool = True, use_cache: bool = True,
               batched: bool = True, embed_chunk: int | None | str = "auto") -> SyntheticSet:
    """Distil ``ipc`` images per class with DM (weighted on the real side when ``weighter`` is given).

    ``batched=False`` runs the reference's per-class loop (same result, for comparison);
    ``embed_chunk`` only trades speed for memory ("auto": 128 images on a CPU, all on a GPU)."""
    device = torch.device(device)
    chunk = default_embed_chunk(device) if embed_chunk == "auto" else embed_chunk
    artifact = _artifact(dataset, ipc, config, weighter)
    finished = load_finished(artifact, ipc, "DM", use_cache)
    if finished is not None:
        return finished

    init_gen = torch_generator(config.seed, "dm", "init")
    net_gen = torch_generator(config.seed, "dm", "networks")
    batch_gen = torch_generator(config.seed, "dm", "real-batches")
    aug_gen = torch_generator(config.seed, "dm", "dsa")
    images, labels, init_index = init_from_real(dataset, ipc, init_gen)
    syn = images.to(device).requires_grad_(True)
    optimizer = torch.optim.SGD([syn], lr=config.lr_img, momentum=config.momentum)
    run = RunState({"images": syn}, {"images": optimizer},
                   {"networks": net_gen, "real-batches": batch_gen, "dsa": aug_gen})
    run.restore(artifact, use_cache, "DM")
    losses = run.losses

    members = class_index_tensors(dataset)
    train_images = torch.from_numpy(dataset.train.images)
    dsa = DSA(dataset.dsa_strategy) if config.dsa else None
    c = dataset.num_classes
    loss_fn = dm_loss if batched else dm_loss_per_class
    bar = progress_bar(range(run.iteration, config.iterations), desc=f"DM ipc={ipc}", disable=not progress,
                       initial=run.iteration, total=config.iterations)
    t0, elapsed_before = time.perf_counter(), run.elapsed_s
    for it in bar:
        net = build_convnet(dataset.channels, c, dataset.image_size, config.model, net_gen, device)
        net.requires_grad_(False)
        index = sample_class_batches(members, config.batch_real, batch_gen)  # [C, B]
        real = dataset.normalize(train_images[index.flatten()], device).view(*index.shape, *train_images.shape[1:])
        weights = None if weighter is None else weighter(index)
        params = dsa.draw(c, aug_gen, dataset.image_size[0]) if dsa is not None else None
        loss = loss_fn(net, real, syn.view(c, ipc, *syn.shape[1:]), weights, dsa, params, chunk)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if (it + 1) % 10 == 0:
            bar.set_postfix(loss=f"{sum(losses[-10:]) / 10:.3f}")
        if run.due(use_cache, config.checkpoint_every, it + 1, config.iterations):
            run.save(artifact, it + 1, elapsed_before + time.perf_counter() - t0)
    elapsed = elapsed_before + time.perf_counter() - t0

    provenance = {"method": "DM", "ipc": ipc, "config": config, "weights": weighter_config(weighter),
                  "dataset": dataset.display_name, "dataset_fingerprint": dataset.fingerprint,
                  "init_index": init_index.tolist(), "final_loss": losses[-1] if losses else None,
                  "loss_every_10": losses[::10], "distill_seconds": elapsed, "device": str(device)}
    return store_finished(artifact, SyntheticSet(syn.detach().cpu(), labels, ipc, "DM", provenance), use_cache)
