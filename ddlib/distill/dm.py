"""Distribution matching (DM, Zhao & Bilen 2023), with optional real-side sample weights.

Per iteration: a freshly initialised, frozen ConvNet ψ; for every class a batch of real images
and the class's synthetic images, augmented with one Siamese DSA draw per class; the loss is
``Σ_c ‖Σ_i w_ci ψ(A(x_ci)) − mean_j ψ(A(s_cj))‖²`` (``w = 1/B``: vanilla DM). All classes go
through ψ in one batched forward pass: instance norm normalises each sample on its own, so this
is exactly the per-class loop of the reference, only faster.

Caching, checkpoints, random streams and provenance come from the shared driver
(:mod:`ddlib.distill.driver`); this module holds DM's loss and its iteration.

Two paths run the same iteration. The CPU path (the default on a CPU) draws everything on CPU
generators and is repeatable bit for bit. The device-resident path (``device_resident``: the
default on CUDA) keeps the uint8 training set on the device (normalised on the fly), draws the
real batches, the network initialisation and the DSA parameters on the device from named, seeded
CUDA generators, and re-initialises one network in place instead of building one per iteration,
so an iteration never waits for the host. Its random numbers differ from the CPU path's: its runs
repeat on one device type, and its cache entries are kept apart. ``precision`` (fp32 / tf32 /
bf16, :mod:`ddlib.core.precision`) applies to the forward passes of either path.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ddlib.core.validation import AT_LEAST_ONE, MOMENTUM, NON_NEGATIVE, POSITIVE, check_config
from ddlib.augment import DSA, AugmentParams
from ddlib.core.precision import check_precision, precision_context
from ddlib.datasets import BiasedDataset
from ddlib.models import ConvNetConfig, build_convnet
from ddlib.models.convnet import ConvNet, init_parameters
from ddlib.distill.driver import DistillationMethod, run_distillation
from ddlib.distill.synthetic import SyntheticSet, class_index_tensors, sample_class_batches
from ddlib.weighting.base import SampleWeighter


@dataclass(frozen=True)
class DMConfig:
    """DM settings (defaults: the reference implementation's)."""

    iterations: int = 20_000
    lr_img: float = 1.0
    momentum: float = 0.5
    batch_real: int = 256
    dsa: bool = True
    model: ConvNetConfig = ConvNetConfig()
    seed: int = 0
    checkpoint_every: int = 200
    # the fast device path (module docstring); part of the cache key only when not the default
    precision: str = "fp32"
    device_resident: bool | None = None  # None: on CUDA devices, off on the CPU

    def __post_init__(self) -> None:
        check_config(self, iterations=NON_NEGATIVE, lr_img=POSITIVE, momentum=MOMENTUM, batch_real=AT_LEAST_ONE,
                     seed=NON_NEGATIVE, checkpoint_every=NON_NEGATIVE)
        check_precision(self.precision)

    def resident_on(self, device: torch.device) -> bool:
        """Whether the device-resident path runs on ``device``."""
        return device.type == "cuda" if self.device_resident is None else self.device_resident


_FAST_PATH_FIELDS = ("precision", "device_resident")


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
    one pass over thousands of images is several times slower (measured in ddlib.tools.benchmark_dm)."""
    if chunk is None or len(x) <= chunk or net.config.norm == "batchnorm":  # batch norm couples samples
        return net.embed(x)
    return torch.cat([net.embed(x[i:i + chunk]) for i in range(0, len(x), chunk)])


def default_embed_chunk(device: torch.device) -> int | None:
    return None if device.type == "cuda" else 128


def dm_loss(net: ConvNet, real: torch.Tensor, syn: torch.Tensor, weights: torch.Tensor | None = None,
            dsa: DSA | None = None, params: AugmentParams | None = None,
            embed_chunk: int | None = None, class_scale: torch.Tensor | None = None) -> torch.Tensor:
    """Batched DM loss. ``real`` [C, B, ...], ``syn`` [C, ipc, ...], ``weights`` [C, B] or None;
    ``params`` holds one augmentation draw per class (group c ↔ class c); ``embed_chunk`` bounds
    how many real images go through the network at once (see :func:`embed_in_chunks`);
    ``class_scale`` [C] multiplies each class's term (a weighter's ``class_loss_scale``: FairDD)."""
    _check_loss_shapes(real, syn, weights)
    c, b = real.shape[:2]
    ipc = syn.shape[1]
    groups_on = params.values.device if params is not None else torch.device("cpu")
    real_groups = torch.arange(c, device=groups_on).repeat_interleave(b)
    syn_groups = torch.arange(c, device=groups_on).repeat_interleave(ipc)
    x_real, x_syn = _augment_pair(dsa, params, real.flatten(0, 1), syn.flatten(0, 1), real_groups, syn_groups)
    with torch.no_grad():
        emb_real = embed_in_chunks(net, x_real, embed_chunk).view(c, b, -1)
    emb_syn = net.embed(x_syn).view(c, ipc, -1)
    emb_real, emb_syn = emb_real.float(), emb_syn.float()  # no-op in fp32; the sum in fp32 under bf16
    if weights is None:
        mean_real = emb_real.mean(dim=1)
    else:
        mean_real = (weights.to(emb_real.device, emb_real.dtype).unsqueeze(-1) * emb_real).sum(dim=1)
    if class_scale is None:
        return ((mean_real - emb_syn.mean(dim=1)) ** 2).sum()
    per_class = ((mean_real - emb_syn.mean(dim=1)) ** 2).sum(dim=1)
    return (class_scale.to(per_class.device, per_class.dtype) * per_class).sum()


def _check_loss_shapes(real: torch.Tensor, syn: torch.Tensor, weights: torch.Tensor | None) -> None:
    """Shapes only (no device read): a mismatch otherwise surfaces as a reshape error far from its cause."""
    if real.dim() != syn.dim() or real.dim() < 3:
        raise ValueError(f"dm_loss expects real [C, B, ...] and syn [C, ipc, ...] (one group per class), got "
                         f"real {tuple(real.shape)} and syn {tuple(syn.shape)}")
    if real.shape[0] != syn.shape[0] or real.shape[2:] != syn.shape[2:]:
        raise ValueError(f"dm_loss: real {tuple(real.shape)} and syn {tuple(syn.shape)} must have the same number "
                         f"of classes (dim 0) and the same image shape (dims 2+)")
    if weights is not None and tuple(weights.shape) != tuple(real.shape[:2]):
        raise ValueError(f"dm_loss: weights {tuple(weights.shape)} must be [C, B] = {tuple(real.shape[:2])}, "
                         "one weight per real image")


def dm_loss_per_class(net: ConvNet, real: torch.Tensor, syn: torch.Tensor, weights: torch.Tensor | None = None,
                      dsa: DSA | None = None, params: AugmentParams | None = None,
                      embed_chunk: int | None = None, class_scale: torch.Tensor | None = None) -> torch.Tensor:
    """The reference's formulation: one forward pass per class (for tests and benchmarks)."""
    total = syn.new_zeros(())
    for k in range(real.shape[0]):
        p = None if params is None else AugmentParams(params.family, params.values[k:k + 1])
        w = None if weights is None else weights[k:k + 1]
        s = None if class_scale is None else class_scale[k:k + 1]
        total = total + dm_loss(net, real[k:k + 1], syn[k:k + 1], w, dsa, p, class_scale=s)
    return total


# -- device-side sampling -------------------------------------------------------------------------
def _config_fields(config: DMConfig) -> dict:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


class DeviceClassSampler:
    """:func:`~ddlib.distill.synthetic.sample_class_batches` drawn on the device: ``batch`` indices
    per class without replacement (the first ``batch`` of a random permutation of each class,
    taken as the smallest keys of uniform draws), from a generator on the members' device."""

    def __init__(self, members: list[torch.Tensor], batch: int, device: torch.device):
        sizes = [len(m) for m in members]
        self.batch = min(batch, min(sizes))
        table = torch.zeros(len(members), max(sizes), dtype=torch.long)
        valid = torch.zeros(len(members), max(sizes), dtype=torch.bool)
        for k, m in enumerate(members):
            table[k, :len(m)], valid[k, :len(m)] = m, True
        self.table, self.invalid = table.to(device), (~valid).to(device)

    def sample(self, generator: torch.Generator) -> torch.Tensor:
        keys = torch.rand(self.table.shape, generator=generator, device=self.table.device)
        keys = keys.masked_fill(self.invalid, 2.0)  # padding sorts last, never chosen
        picks = keys.topk(self.batch, dim=1, largest=False).indices
        return self.table.gather(1, picks)


# -- the method ---------------------------------------------------------------------------------
class DMMethod(DistillationMethod):
    """DM's iteration: a fresh frozen ConvNet, one real batch per class, one Siamese DSA draw per
    class, the (weighted) embedding-mean loss, one SGD step on the images."""

    name, stream = "DM", "dm"
    streams = ("networks", "real-batches", "dsa")

    def __init__(self, dataset: BiasedDataset, ipc: int, config: DMConfig, weighter: SampleWeighter | None,
                 device: torch.device, batched: bool = True, embed_chunk: int | None | str = "auto"):
        super().__init__(dataset, ipc, config, weighter, device)
        self.batched = batched
        self.chunk = default_embed_chunk(device) if embed_chunk == "auto" else embed_chunk
        self.members = class_index_tensors(dataset)
        self.train_images = torch.from_numpy(dataset.train.images)
        self.dsa = DSA(dataset.dsa_strategy) if config.dsa else None
        self.resident = config.resident_on(device)
        if self.resident:
            # the DSA family is a Python branch: picked on a CPU stream, so nothing waits for the device
            self.streams = (*self.streams, "dsa-family")
            self.train_images = self.train_images.to(device)
            self.sampler = DeviceClassSampler(self.members, config.batch_real, device)
            self.net = build_convnet(dataset.channels, dataset.num_classes, dataset.image_size, config.model,
                                     torch.Generator(), device).requires_grad_(False)
            self.mean = torch.tensor(dataset.mean, device=device).view(1, -1, 1, 1)
            self.std = torch.tensor(dataset.std, device=device).view(1, -1, 1, 1)

    def stream_device(self, name: str) -> torch.device:
        return self.device if self.resident and name != "dsa-family" else torch.device("cpu")

    def cache_key(self) -> dict:
        key = super().cache_key()
        # the fast-path fields enter the key only when they change the result: results of earlier
        # runs keep their keys; the device-resident path draws other random numbers
        cfg = self.config
        key["config"] = {f: v for f, v in _config_fields(cfg).items() if f not in _FAST_PATH_FIELDS}
        if cfg.precision != "fp32":
            key["precision"] = cfg.precision
        if self.resident:
            key["sampling"] = "device"
        return key

    def learnables(self, syn: torch.Tensor):
        self.optimizer = torch.optim.SGD([syn], lr=self.config.lr_img, momentum=self.config.momentum)
        return {"images": syn}, {"images": self.optimizer}

    def iteration(self, it: int, syn: torch.Tensor, gens: dict[str, torch.Generator]) -> torch.Tensor:
        with precision_context(self.config.precision, self.device):
            loss = self._resident_loss(syn, gens) if self.resident else self._host_loss(syn, gens)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def _resident_loss(self, syn: torch.Tensor, gens: dict[str, torch.Generator]) -> torch.Tensor:
        ds, c = self.dataset, self.dataset.num_classes
        init_parameters(self.net, gens["networks"])
        index = self.sampler.sample(gens["real-batches"])  # [C, B] on the device
        x = self.train_images[index.flatten()].float().div_(255.0)
        real = ((x - self.mean) / self.std).view(*index.shape, *x.shape[1:])
        # the weighters compute on the host: a weighted run reads the batch indices back once per iteration
        weights = None if self.weighter is None else self.weighter(index.cpu())
        params = (self.dsa.draw(c, gens["dsa"], ds.image_size[0], family_generator=gens["dsa-family"])
                  if self.dsa is not None else None)
        loss_fn = dm_loss if self.batched else dm_loss_per_class
        return loss_fn(self.net, real, syn.view(c, self.ipc, *syn.shape[1:]), weights, self.dsa, params, self.chunk,
                       class_scale=self._class_scale(index))

    def _class_scale(self, index: torch.Tensor) -> torch.Tensor | None:
        """The weighter's per-class loss factor [C] for this batch (FairDD), or None (every other weighter)."""
        scale = getattr(self.weighter, "class_loss_scale", None) if self.weighter is not None else None
        return None if scale is None else scale(index.cpu())

    def _host_loss(self, syn: torch.Tensor, gens: dict[str, torch.Generator]) -> torch.Tensor:
        ds, c = self.dataset, self.dataset.num_classes
        net = build_convnet(ds.channels, c, ds.image_size, self.config.model, gens["networks"], self.device)
        net.requires_grad_(False)
        index = sample_class_batches(self.members, self.config.batch_real, gens["real-batches"])  # [C, B]
        real = ds.normalize(self.train_images[index.flatten()], self.device).view(*index.shape,
                                                                                  *self.train_images.shape[1:])
        weights = None if self.weighter is None else self.weighter(index)
        params = self.dsa.draw(c, gens["dsa"], ds.image_size[0]) if self.dsa is not None else None
        loss_fn = dm_loss if self.batched else dm_loss_per_class
        return loss_fn(net, real, syn.view(c, self.ipc, *syn.shape[1:]), weights, self.dsa, params, self.chunk,
                       class_scale=self._class_scale(index))

    def postfix(self, losses: list[float]) -> dict[str, str]:
        return {"loss": f"{sum(losses[-10:]) / 10:.3f}"}


def distill_dm(dataset: BiasedDataset, ipc: int, config: DMConfig, weighter: SampleWeighter | None = None,
               device: torch.device | str = "cpu", progress: bool = True, use_cache: bool = True,
               batched: bool = True, embed_chunk: int | None | str = "auto") -> SyntheticSet:
    """Distil ``ipc`` images per class with DM (weighted on the real side when ``weighter`` is given).

    ``batched=False`` runs the reference's per-class loop (same result, for comparison);
    ``embed_chunk`` only trades speed for memory ("auto": 128 images on a CPU, all on a GPU)."""
    method = DMMethod(dataset, ipc, config, weighter, torch.device(device), batched, embed_chunk)
    return run_distillation(method, progress, use_cache)
