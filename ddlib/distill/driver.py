"""The one distillation driver: everything DM, DC/DSA and MTT share around their loss.

A method (:class:`DistillationMethod`) supplies only what is its own — its random streams, its
learnable tensors and optimisers, and one iteration (loss and update). :func:`run_distillation`
does the rest, once for every method:

1. looks the finished set up in the cache, keyed by the data set's fingerprint, the IPC, the
   method's full configuration and the real-side weights;
2. creates the method's named random streams from the config's seed (``<stream>/<name>``), and
   initialises the synthetic images (stream ``init``): from random real images of their class, or,
   when the config says ``init="noise"`` (DC's own default), from a standard normal in the
   normalised space (:func:`initial_images`);
3. restores a checkpoint when an earlier run was interrupted — tensors, optimisers, generators,
   the iteration counter, the loss history and the elapsed time — so the resumed run ends with the
   same result as an uninterrupted one;
4. runs the iterations with a progress bar, reading the losses back from the device only every
   ``log_every`` iterations (no host synchronisation in between), and checkpoints every
   ``checkpoint_every`` iterations (atomically);
5. records provenance and commits the finished set to the cache, dropping the checkpoint.
"""

from __future__ import annotations

import copy
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import torch

from ddlib.core.cache import ArtifactDir, check_writable, read_checked, save_torch, write_checked
from ddlib.core.device import numerics_identity
from ddlib.core.progress import bar_label, progress as progress_bar, run_tag
from ddlib.core.seeding import torch_generator
from ddlib.datasets import BiasedDataset
from ddlib.distill.synthetic import SyntheticSet, check_ipc, init_from_real
from ddlib.models.convnet import NUMERICS
from ddlib.weighting.base import CheckedWeighter, SampleWeighter, weighter_config


# -- initialisation ----------------------------------------------------------------------------------
INITS = ("real", "noise")


def initial_images(dataset: BiasedDataset, ipc: int, init: str, generator: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The synthetic set's starting point: ``"real"`` — random real images of each class
    (:func:`init_from_real`); ``"noise"`` — i.i.d. standard normal pixels in the normalised space.
    Returns the images [C·ipc, ...], the labels and the chosen training indices (None for noise)."""
    if init not in INITS:
        raise ValueError(f"unknown initialisation {init!r}; choose one of {INITS}")
    if init == "real":
        return init_from_real(dataset, ipc, generator)
    check_ipc(dataset, ipc)
    labels = torch.arange(dataset.num_classes).repeat_interleave(ipc)
    images = torch.randn((len(labels), dataset.channels, *dataset.image_size), generator=generator)
    return images, labels, None


# -- the finished-set cache and checkpoints ------------------------------------------------------
CHECKPOINT_FILE = "checkpoint.pt"


def load_finished(artifact: ArtifactDir, ipc: int, method: str, use_cache: bool) -> SyntheticSet | None:
    """The cached synthetic set of this configuration, or None."""
    if not (use_cache and artifact.is_complete()):
        return None
    state = torch.load(artifact.file("synthetic.pt"))
    return SyntheticSet(state["images"], state["labels"], ipc, method, artifact.meta()["provenance"])


def store_finished(artifact: ArtifactDir, result: SyntheticSet, use_cache: bool) -> SyntheticSet:
    """Commit the finished set (images, labels, provenance) and drop the checkpoint."""
    if not torch.isfinite(result.images).all():
        raise FloatingPointError(
            f"{result.method} ipc={result.ipc} produced non-finite synthetic images (the optimisation diverged); "
            "not caching them — lower the learning rate (lr_img) or check the real-side weights")
    if use_cache:
        artifact.commit({"synthetic.pt": save_torch({"images": result.images, "labels": result.labels})},
                        result.provenance)
        artifact.file(CHECKPOINT_FILE).unlink(missing_ok=True)
    return result


@dataclass
class RunState:
    """The resumable state of one distillation run (tensors and optimisers are updated in place)."""

    tensors: dict[str, torch.Tensor]
    optimizers: dict[str, torch.optim.Optimizer]
    generators: dict[str, torch.Generator]
    iteration: int = 0
    losses: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    def restore(self, artifact: ArtifactDir, use_cache: bool, name: str) -> bool:
        """Load ``checkpoint.pt`` when there is one, all or nothing.

        The checkpoint must pass its checksum, hold exactly this run's tensors (same shapes and dtypes,
        all finite), optimisers and generators, and a sane iteration counter; otherwise it is deleted,
        any partly applied state is rolled back, and the run restarts from iteration 0 (saying so).
        Returns whether a checkpoint was restored."""
        path = artifact.file(CHECKPOINT_FILE)
        if not (use_cache and path.exists()):
            return False
        before = self._snapshot()
        try:
            self._apply(read_checked(path))
            return True
        except Exception as exc:  # noqa: BLE001 - any defect discards the checkpoint whole
            self._apply(before)
            path.unlink(missing_ok=True)
            print(f"discarded the {name} checkpoint {path} ({type(exc).__name__}: {exc}); restarting from iteration 0")
            return False

    def _snapshot(self) -> dict[str, Any]:
        return {"tensors": {k: t.detach().clone() for k, t in self.tensors.items()},
                "optimizers": {k: copy.deepcopy(o.state_dict()) for k, o in self.optimizers.items()},
                "generators": {k: g.get_state() for k, g in self.generators.items()},
                "iteration": self.iteration, "losses": list(self.losses), "elapsed_s": self.elapsed_s}

    def _apply(self, state: Any) -> None:
        """Check everything first, then copy (so a failed check leaves the state untouched)."""
        if not isinstance(state, dict):
            raise ValueError("checkpoint is not a dictionary")
        for group, expected in (("tensors", self.tensors), ("optimizers", self.optimizers),
                                ("generators", self.generators)):
            if not isinstance(state.get(group), dict) or set(state[group]) != set(expected):
                raise ValueError(f"checkpoint {group} {sorted(state.get(group) or [])} != {sorted(expected)}")
        for key, tensor in self.tensors.items():
            saved = state["tensors"][key]
            if not isinstance(saved, torch.Tensor) or saved.shape != tensor.shape or saved.dtype != tensor.dtype:
                raise ValueError(f"checkpoint tensor {key!r} does not match the run's {tuple(tensor.shape)} "
                                 f"{tensor.dtype}")
            if not torch.isfinite(saved).all():
                raise ValueError(f"checkpoint tensor {key!r} holds non-finite values")
        iteration = state.get("iteration")
        if not isinstance(iteration, int) or iteration < 0 or not isinstance(state.get("losses"), list):
            raise ValueError(f"checkpoint iteration {iteration!r} / losses are not valid")
        with torch.no_grad():
            for key, tensor in self.tensors.items():
                tensor.copy_(state["tensors"][key].to(tensor.device))
        for key, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][key])
        for key, gen in self.generators.items():
            gen.set_state(state["generators"][key])
        self.iteration, self.elapsed_s = iteration, float(state["elapsed_s"])
        self.losses[:] = state["losses"]  # in place: the driver holds this list

    def save(self, artifact: ArtifactDir, iteration: int, elapsed_s: float) -> None:
        """Write the checkpoint atomically with its checksum inside (see :func:`read_checked`)."""
        self.iteration, self.elapsed_s = iteration, elapsed_s
        payload: dict[str, Any] = {
            "tensors": {k: t.detach().cpu() for k, t in self.tensors.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "generators": {k: g.get_state() for k, g in self.generators.items()},
            "iteration": iteration, "losses": list(self.losses), "elapsed_s": elapsed_s}
        write_checked(artifact.file(CHECKPOINT_FILE), payload)

    def due(self, use_cache: bool, every: int, iteration_done: int, total: int) -> bool:
        """Whether to checkpoint after ``iteration_done`` iterations (never after the last one)."""
        return bool(use_cache and every and iteration_done % every == 0 and iteration_done < total)


# -- the method interface ---------------------------------------------------------------------------
class DistillationMethod(ABC):
    """One distillation method on one data set: its loss and its update, nothing else.

    Subclasses set ``name`` (for display and provenance), ``stream`` (the label of the cache folder
    and the random streams) and ``streams`` (the generators its iterations draw from, checkpointed
    with the run), and implement :meth:`learnables` and :meth:`iteration`."""

    name: str
    stream: str
    streams: tuple[str, ...]
    log_every: int = 10  # losses are read back from the device this often

    def __init__(self, dataset: BiasedDataset, ipc: int, config: Any, weighter: SampleWeighter | None,
                 device: torch.device):
        # every weight the method draws is checked where it is produced (one validation point)
        checked = None if weighter is None else CheckedWeighter(weighter)
        self.dataset, self.ipc, self.config, self.weighter, self.device = dataset, ipc, config, checked, device

    @property
    def init(self) -> str:
        """How the synthetic images start (``config.init`` where the config has one; else real images)."""
        return getattr(self.config, "init", "real")

    @property
    def iterations(self) -> int:
        return self.config.iterations

    @property
    def checkpoint_every(self) -> int:
        return self.config.checkpoint_every

    def weights_key(self) -> dict[str, Any]:
        return weighter_config(self.weighter)

    def cache_key(self) -> dict[str, Any]:
        return {"dataset": self.dataset.fingerprint, "ipc": self.ipc, "config": self.config,
                "weights": self.weights_key(), "numerics": NUMERICS, **numerics_identity(self.device),
                "format": 1}

    def code(self) -> tuple[Any, ...]:
        """What computes the set: the method's class and the weighter's (their modules and imports)."""
        inner = getattr(self.weighter, "inner", self.weighter)
        return (type(self),) if inner is None else (type(self), type(inner))

    def stream_device(self, name: str) -> torch.device:
        """Where random stream ``name`` draws (CPU unless a device-resident path says otherwise)."""
        return torch.device("cpu")

    def prepare(self, progress: bool, use_cache: bool) -> None:
        """Work needed only when the set is not cached (MTT: the expert trajectories)."""

    @abstractmethod
    def learnables(self, syn: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.optim.Optimizer]]:
        """The learnable tensors (``syn`` among them) and their optimisers, by name."""

    @abstractmethod
    def iteration(self, it: int, syn: torch.Tensor, gens: dict[str, torch.Generator]) -> torch.Tensor:
        """One iteration: the loss, the backward pass and the optimiser steps; returns the detached
        loss as a device tensor (read back by the driver every ``log_every`` iterations)."""

    def postfix(self, losses: list[float]) -> dict[str, str]:
        recent = losses[-self.log_every:]
        return {"loss": f"{sum(recent) / max(1, len(recent)):.4f}"}

    def provenance(self, losses: list[float]) -> dict[str, Any]:
        """Method-specific provenance (added to the shared fields)."""
        return {"loss_every_10": losses[::10]}


def run_distillation(method: DistillationMethod, progress: bool = True, use_cache: bool = True) -> SyntheticSet:
    """Run ``method`` to the end (or load its cached result) and return the synthetic set."""
    artifact = ArtifactDir(f"synthetic/{method.stream}", method.cache_key(), code=method.code())
    if not use_cache:
        return _run(method, artifact, progress, use_cache)
    with artifact.lock():  # concurrent runs of one configuration: one distils, the others load its result
        return _run(method, artifact, progress, use_cache)


def _run(method: DistillationMethod, artifact: ArtifactDir, progress: bool, use_cache: bool) -> SyntheticSet:
    dataset, ipc, config = method.dataset, method.ipc, method.config
    finished = load_finished(artifact, ipc, method.name, use_cache)
    if finished is not None:
        return finished
    if use_cache:
        check_writable()  # fail now, not after the distillation
    method.prepare(progress, use_cache)

    images, labels, init_index = initial_images(dataset, ipc, method.init,
                                                torch_generator(config.seed, method.stream, "init"))
    gens = {name: torch_generator(config.seed, method.stream, name, device=method.stream_device(name))
            for name in method.streams}
    syn = images.to(method.device).requires_grad_(True)
    tensors, optimizers = method.learnables(syn)
    run = RunState(tensors, optimizers, gens)
    run.restore(artifact, use_cache, method.name)
    losses = run.losses

    total = method.iterations
    label = bar_label(dataset, run_tag(method.name, ipc, method.weights_key(), getattr(config, "seed", None)), "distil")
    bar = progress_bar(range(run.iteration, total), desc=label, disable=not progress,
                       initial=run.iteration, total=total)
    pending: list[torch.Tensor] = []
    t0, elapsed_before = time.perf_counter(), run.elapsed_s
    for it in bar:
        pending.append(method.iteration(it, syn, gens))
        done = it + 1
        checkpoint = run.due(use_cache, method.checkpoint_every, done, total)
        if done % method.log_every == 0 or done == total or checkpoint:
            losses.extend(torch.stack(pending).cpu().tolist())  # one host synchronisation for the lot
            pending.clear()
            bar.set_postfix(method.postfix(losses))
        if checkpoint:
            run.save(artifact, done, elapsed_before + time.perf_counter() - t0)
    elapsed = elapsed_before + time.perf_counter() - t0

    provenance = {"method": method.name, "ipc": ipc, "config": config, "weights": method.weights_key(),
                  "dataset": dataset.display_name, "dataset_fingerprint": dataset.fingerprint,
                  "init": method.init,
                  "init_index": None if init_index is None else init_index.tolist(), "final_loss": losses[-1] if losses else None,
                  "distill_seconds": elapsed, "device": str(method.device), **method.provenance(losses)}
    result = SyntheticSet(syn.detach().cpu(), labels, ipc, method.name, provenance)
    return store_finished(artifact, result, use_cache)
