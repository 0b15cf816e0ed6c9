"""What every distillation method shares around its loop: the finished-set cache and checkpoints.

A run's state — learnable tensors, optimisers, random generators, the iteration counter, the loss
history and the elapsed time — is written atomically every ``checkpoint_every`` iterations to
``checkpoint.pt`` inside the run's cache folder, so an interrupted run resumes where it stopped
and, generators included, ends with the same result as an uninterrupted one. The finished
synthetic set is committed to the same folder and the checkpoint removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..cache import ArtifactDir, atomic_write, save_torch
from .synthetic import SyntheticSet


def load_finished(artifact: ArtifactDir, ipc: int, method: str, use_cache: bool) -> SyntheticSet | None:
    """The cached synthetic set of this configuration, or None."""
    if not (use_cache and artifact.is_complete()):
        return None
    state = torch.load(artifact.file("synthetic.pt"))
    return SyntheticSet(state["images"], state["labels"], ipc, method, artifact.meta()["provenance"])


def store_finished(artifact: ArtifactDir, result: SyntheticSet, use_cache: bool) -> SyntheticSet:
    """Commit the finished set (images, labels, provenance) and drop the checkpoint."""
    if use_cache:
        artifact.commit({"synthetic.pt": save_torch({"images": result.images, "labels": result.labels})},
                        result.provenance)
        artifact.file("checkpoint.pt").unlink(missing_ok=True)
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

    def restore(self, artifact: ArtifactDir, use_cache: bool, name: str) -> None:
        """Load ``checkpoint.pt`` when there is one; an unreadable checkpoint only costs progress."""
        path = artifact.file("checkpoint.pt")
        if not (use_cache and path.exists()):
            return
        try:
            state = torch.load(path)
            with torch.no_grad():
                for key, tensor in self.tensors.items():
                    tensor.copy_(state["tensors"][key].to(tensor.device))
            for key, optimizer in self.optimizers.items():
                optimizer.load_state_dict(state["optimizers"][key])
            for key, gen in self.generators.items():
                gen.set_state(state["generators"][key])
            self.iteration, self.losses, self.elapsed_s = state["iteration"], state["losses"], state["elapsed_s"]
        except Exception as exc:  # noqa: BLE001
            print(f"ignoring unreadable {name} checkpoint {path}: {exc}")

    def save(self, artifact: ArtifactDir, iteration: int, elapsed_s: float) -> None:
        self.iteration, self.elapsed_s = iteration, elapsed_s
        payload: dict[str, Any] = {
            "tensors": {k: t.detach().cpu() for k, t in self.tensors.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "generators": {k: g.get_state() for k, g in self.generators.items()},
            "iteration": iteration, "losses": self.losses, "elapsed_s": elapsed_s}
        atomic_write(artifact.file("checkpoint.pt"), save_torch(payload))

    def due(self, use_cache: bool, every: int, iteration_done: int, total: int) -> bool:
        """Whether to checkpoint after ``iteration_done`` iterations (never after the last one)."""
        return bool(use_cache and every and iteration_done % every == 0 and iteration_done < total)
