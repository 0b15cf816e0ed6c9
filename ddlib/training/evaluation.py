"""The evaluation protocol shared by every distillation method.

Fresh networks are trained on a synthetic set (or on the full training set: "no distillation")
with a training objective (plain cross-entropy by default) and tested once at the end on the
unbiased test split; accuracy is reported overall and on the bias-aligned and bias-conflicting
test samples, as mean ± std over several models. Nothing is selected on the test set.

An evaluation is an expensive artifact too: :func:`evaluate_synthetic_cached` and
:func:`evaluate_full_data_cached` cache it under the data set, the *content* of the training
images, the settings and the objective, so rerunning a notebook reuses it.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ddlib.core.cache import ArtifactDir, tensor_digest
from ddlib.core.precision import check_precision, precision_context
from ddlib.core.seeding import derive_seed
from ddlib.datasets import BiasedDataset, BiasedSplit
from ddlib.training.batched import train_classifiers_batched
from ddlib.training.loop import predict, train_classifier
from ddlib.training.objectives import CrossEntropy, TrainConfig, objective_config

if TYPE_CHECKING:
    from ddlib.distill.synthetic import SyntheticSet


@dataclass(frozen=True)
class EvalSettings:
    """How a set of images is judged: ``n_models`` fresh networks trained with ``train`` and
    ``objective``, seeds derived from ``seed``. One object per profile, used by every notebook."""

    train: TrainConfig
    n_models: int
    seed: int = 0
    objective: Any = field(default_factory=CrossEntropy)  # a TrainingObjective
    # the fast device path: train the k networks at once (ddlib.training.batched; None: on CUDA
    # only, so CPU numbers stay as they were; cross-entropy only) and the forward passes' precision
    batched: bool | None = None
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.n_models < 1:
            raise ValueError(f"n_models must be at least 1, got {self.n_models}")
        check_precision(self.precision)

    def batched_on(self, device: torch.device) -> bool:
        """Whether :func:`evaluate_images` trains the k networks together on ``device``."""
        if not isinstance(self.objective, CrossEntropy):
            return False
        return torch.device(device).type == "cuda" if self.batched is None else self.batched


@dataclass(frozen=True)
class FullDataSettings:
    """"No distillation": how networks are trained on the training set itself. ``max_samples``: a
    stratified subset that keeps the class and bias proportions (CPU profiles); None: all of it."""

    evaluation: EvalSettings
    max_samples: int | None = None


@dataclass(frozen=True)
class Accuracy:
    overall: float
    aligned: float
    conflicting: float


def split_accuracy(predictions: torch.Tensor, split: BiasedSplit) -> Accuracy:
    correct = (predictions.numpy() == split.targets)
    aligned = split.aligned

    def mean(mask: np.ndarray) -> float:
        return float(correct[mask].mean()) if mask.any() else float("nan")
    return Accuracy(overall=float(correct.mean()), aligned=mean(aligned), conflicting=mean(~aligned))


@dataclass(frozen=True)
class EvalResult:
    """Per-model accuracies (in [0, 1]) and their summary."""

    per_model: tuple[Accuracy, ...]

    def _stat(self, name: str, fn) -> float:
        return float(fn([getattr(a, name) for a in self.per_model]))

    @property
    def mean(self) -> Accuracy:
        return Accuracy(*(self._stat(f, np.mean) for f in ("overall", "aligned", "conflicting")))

    @property
    def std(self) -> Accuracy:
        return Accuracy(*(self._stat(f, np.std) for f in ("overall", "aligned", "conflicting")))

    def row(self) -> dict[str, float]:
        """Percentages for a results table."""
        m, s = self.mean, self.std
        return {"acc": 100 * m.overall, "acc_std": 100 * s.overall, "aligned": 100 * m.aligned,
                "conflicting": 100 * m.conflicting, "n_models": len(self.per_model)}

    def to_dict(self) -> dict:
        return {"per_model": [asdict(a) for a in self.per_model], **self.row()}


def evaluate_images(dataset: BiasedDataset, images: torch.Tensor, labels: torch.Tensor, settings: EvalSettings,
                    device: torch.device, progress: bool = True, desc: str = "evaluate",
                    split: str = "test") -> EvalResult:
    """Train ``settings.n_models`` fresh networks on the images and test each once on ``split``."""
    target = getattr(dataset, split, None)
    if target is None:
        raise ValueError(f"data set {dataset.name} has no {split!r} split")
    test_images = torch.from_numpy(target.images)
    seeds = [derive_seed(settings.seed, "eval-model", k) for k in range(settings.n_models)]
    with precision_context(settings.precision, device):
        if settings.batched_on(device):
            models = train_classifiers_batched(dataset, images, labels, settings.train, seeds, device,
                                               show_progress=progress, desc=f"{desc} [{settings.n_models} at once]")
        else:
            models = (train_classifier(dataset, images, labels, settings.train, seed, device, show_progress=progress,
                                       desc=f"{desc} [{k + 1}/{settings.n_models}]", objective=settings.objective)
                      for k, seed in enumerate(seeds))
        results = [split_accuracy(predict(model, dataset, test_images, device), target) for model in models]
    return EvalResult(tuple(results))


def full_data_index(n: int, max_samples: int | None) -> np.ndarray:
    """The training indices "no distillation" uses: all, or a stratified subset that keeps the class
    and bias proportions (every k-th sample in data set order)."""
    if max_samples is None or max_samples >= n:
        return np.arange(n)
    return np.linspace(0, n - 1, max_samples).round().astype(np.int64)


def evaluate_full_data(dataset: BiasedDataset, settings: EvalSettings, device: torch.device, progress: bool = True,
                       max_samples: int | None = None) -> EvalResult:
    """"No distillation": the same networks trained on the (biased or unbiased) training set."""
    index = full_data_index(len(dataset.train), max_samples)
    images = torch.from_numpy(dataset.train.images[index])
    labels = torch.from_numpy(dataset.train.targets[index])
    return evaluate_images(dataset, images, labels, settings, device, progress, desc="full data")


# -- cached evaluations ----------------------------------------------------------------------------
def _settings_key(settings: EvalSettings) -> dict[str, Any]:
    key = {"config": settings.train, "n_models": settings.n_models, "seed": settings.seed,
           "objective": objective_config(settings.objective)}
    if settings.precision != "fp32":  # only then: earlier results keep their keys
        key["precision"] = settings.precision
    return key


def _load_eval(artifact: ArtifactDir) -> EvalResult | None:
    if not artifact.is_complete():
        return None
    payload = json.loads(artifact.file("result.json").read_text())
    return EvalResult(tuple(Accuracy(**a) for a in payload["per_model"]))


def _store_eval(artifact: ArtifactDir, result: EvalResult, provenance: dict[str, Any]) -> None:
    text = json.dumps(result.to_dict(), indent=2)
    artifact.commit({"result.json": lambda p: p.write_text(text)}, provenance)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def synthetic_fingerprint(syn: SyntheticSet) -> str:
    """Content hash of a synthetic set (its images and labels)."""
    return tensor_digest(syn.images, syn.labels)


def settings_for(syn: SyntheticSet, settings: EvalSettings) -> EvalSettings:
    """The evaluation settings a synthetic set is judged with: ``settings``, except that an MTT set is
    trained with the student step size learned with it (the MTT reference's protocol), not the fixed lr."""
    learned = syn.provenance.get("final_syn_lr") if syn.method == "MTT" else None
    if learned is None:
        return settings
    return replace(settings, train=replace(settings.train, lr=float(learned)))


def evaluate_synthetic_cached(dataset: BiasedDataset, syn: SyntheticSet, settings: EvalSettings,
                              device: torch.device, progress: bool = True) -> EvalResult:
    """:func:`evaluate_images` on a synthetic set, cached by (data set, synthetic content, settings);
    MTT sets with their learned step size (:func:`settings_for`)."""
    settings = settings_for(syn, settings)
    artifact = ArtifactDir("evaluations/synthetic", {"dataset": dataset.fingerprint,
                                                     "synthetic": synthetic_fingerprint(syn),
                                                     **_settings_key(settings), "format": 2})
    with artifact.lock():  # of several processes asking at once, one trains, the others load
        cached = _load_eval(artifact)
        if cached is not None:
            return cached
        result = evaluate_images(dataset, syn.images, syn.labels, settings, device, progress,
                                 desc=f"evaluate {syn.method} ipc={syn.ipc}")
        _store_eval(artifact, result, {"dataset": dataset.display_name, "method": syn.method, "ipc": syn.ipc,
                                       "device": str(device), "finished": _now()})
        return result


def evaluate_full_data_cached(dataset: BiasedDataset, settings: FullDataSettings, device: torch.device,
                              progress: bool = True) -> EvalResult:
    """:func:`evaluate_full_data`, cached by (data set, settings, subset size)."""
    artifact = ArtifactDir("evaluations/full", {"dataset": dataset.fingerprint, **_settings_key(settings.evaluation),
                                                "max_samples": settings.max_samples, "format": 2})
    with artifact.lock():  # of several processes asking at once, one trains, the others load
        cached = _load_eval(artifact)
        if cached is not None:
            return cached
        result = evaluate_full_data(dataset, settings.evaluation, device, progress, settings.max_samples)
        _store_eval(artifact, result, {"dataset": dataset.display_name, "device": str(device), "finished": _now()})
        return result
