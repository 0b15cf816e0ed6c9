"""The evaluation protocol shared by every distillation method.

Fresh networks are trained on a synthetic set (or on the full training set: "no distillation")
with a training objective (plain cross-entropy by default) and tested once at the end on one split,
``EvalSettings.split``: the unbiased test split for final models (the default), the validation split
(``replace(settings, split="valid")``) for anything that is selected; accuracy is reported overall
and on the bias-aligned and bias-conflicting samples, as mean ± std over several models. Nothing is
selected on the test set.

The "no distillation" reference (:class:`FullDataSettings`) trains either a fixed number of epochs
(``patience=None``) or, converged, until the accuracy on the *validation* split plateaus
(:mod:`ddlib.training.plateau`), recording the validation curve, then tests once.

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

from ddlib.core.validation import AT_LEAST_ONE, NON_NEGATIVE, check_config
from ddlib.core.cache import ArtifactDir, tensor_digest
from ddlib.core.device import numerics_identity
from ddlib.core.precision import check_precision, precision_context
from ddlib.core.progress import run_tag
from ddlib.core.seeding import derive_seed
from ddlib.datasets import BiasedDataset, BiasedSplit
from ddlib.models.convnet import NUMERICS
from ddlib.training.accuracy import Accuracy, split_accuracy
from ddlib.training.batched import train_classifiers_batched
from ddlib.training.loop import predict, train_classifier
from ddlib.training.plateau import CurvePoint, PlateauRule, train_until_plateau
from ddlib.training.objectives import CrossEntropy, TrainConfig, objective_config

if TYPE_CHECKING:
    from ddlib.distill.synthetic import SyntheticSet


SPLITS = ("test", "valid", "train")


@dataclass(frozen=True)
class EvalSettings:
    """How a set of images is judged: ``n_models`` fresh networks trained with ``train`` and
    ``objective``, seeds derived from ``seed``, tested on ``split`` ("test": final models; "valid":
    selection). One object per profile, used by every notebook."""

    train: TrainConfig
    n_models: int
    seed: int = 0
    objective: Any = field(default_factory=CrossEntropy)  # a TrainingObjective
    # the fast device path: train the k networks at once (ddlib.training.batched; None: on CUDA
    # only, so CPU numbers stay as they were; cross-entropy only) and the forward passes' precision
    batched: bool | None = None
    precision: str = "fp32"
    split: str = "test"  # the split the trained networks are tested on: "test", "valid" (or "train")

    def __post_init__(self) -> None:
        check_config(self, n_models=AT_LEAST_ONE, seed=NON_NEGATIVE)
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        check_precision(self.precision)

    def batched_on(self, device: torch.device) -> bool:
        """Whether :func:`evaluate_images` trains the k networks together on ``device``."""
        if not isinstance(self.objective, CrossEntropy):
            return False
        return torch.device(device).type == "cuda" if self.batched is None else self.batched


@dataclass(frozen=True)
class FullDataSettings:
    """"No distillation": how networks are trained on the training set itself. ``max_samples``: a
    stratified subset that keeps the class and bias proportions (CPU profiles); None: all of it.

    ``patience=None``: a fixed ``evaluation.train.epochs`` epochs (the old reference). Otherwise
    converged: each of the ``evaluation.n_models`` networks trains until its accuracy on the data
    set's *validation* split has not improved by more than ``min_delta`` for ``patience``
    evaluations (``evals_per_epoch`` per epoch), at most ``max_epochs`` epochs (None: the training
    config's epochs; the learning rate drops × 0.1 at half of ``max_epochs``, as in the protocol),
    keeps its best-on-validation state (:mod:`ddlib.training.plateau` says why), and is tested once
    on ``evaluation.split``."""

    evaluation: EvalSettings
    max_samples: int | None = None
    max_epochs: int | None = None
    patience: int | None = None
    min_delta: float = 0.0
    evals_per_epoch: int = 1

    def __post_init__(self) -> None:
        check_config(self, max_samples=AT_LEAST_ONE, max_epochs=AT_LEAST_ONE, patience=AT_LEAST_ONE,
                     min_delta=NON_NEGATIVE, evals_per_epoch=AT_LEAST_ONE)
        if self.patience is not None:
            self.rule()  # validates the numbers

    @property
    def converged(self) -> bool:
        """Whether training runs until the validation plateau (else a fixed number of epochs)."""
        return self.patience is not None

    def rule(self) -> PlateauRule:
        if self.patience is None:
            raise ValueError("fixed-epoch full-data settings (patience=None) have no plateau rule")
        return PlateauRule(max_epochs=self.max_epochs or self.evaluation.train.epochs, patience=self.patience,
                           min_delta=self.min_delta, evals_per_epoch=self.evals_per_epoch)

    def train_config(self) -> TrainConfig:
        """The training config the networks run with (converged: its epochs are ``max_epochs``)."""
        train = self.evaluation.train
        return replace(train, epochs=self.rule().max_epochs) if self.converged else train


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


@dataclass(frozen=True)
class FullDataResult(EvalResult):
    """The "no distillation" reference: test accuracies per model (as :class:`EvalResult`) and, when
    trained to the validation plateau, each model's validation curve (one point per evaluation), the
    epoch its kept state comes from and the epoch it stopped at. Fixed-epoch runs have no curves."""

    curves: tuple[tuple[CurvePoint, ...], ...] = ()
    best_epochs: tuple[float, ...] = ()
    stopped_epochs: tuple[float, ...] = ()

    def curve_table(self):
        """The validation curves as a long table (model, epoch, valid overall / aligned / conflicting
        in %), ready to plot: one line per model and metric."""
        import pandas as pd
        rows = [{"model": k, "epoch": p.epoch, "valid overall": 100 * p.overall, "valid aligned": 100 * p.aligned,
                 "valid conflicting": 100 * p.conflicting}
                for k, curve in enumerate(self.curves) for p in curve]
        return pd.DataFrame(rows, columns=["model", "epoch", "valid overall", "valid aligned", "valid conflicting"])

    def to_dict(self) -> dict:
        return {**super().to_dict(), "curves": [[asdict(p) for p in c] for c in self.curves],
                "best_epochs": list(self.best_epochs), "stopped_epochs": list(self.stopped_epochs)}


def split_of(dataset: BiasedDataset, split: str) -> BiasedSplit:
    """``dataset``'s split called ``split``, or a clear error when the data set has none."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; one of {SPLITS}")
    target = getattr(dataset, split, None)
    if target is None or len(target) == 0:
        raise ValueError(f"data set {dataset.name} has no {split!r} split; load a data set that has one "
                         f"(or hold one out of the training set: "
                         f"ddlib.experiments.training_time_debiasing.holdout_validation)")
    return target


def evaluate_images(dataset: BiasedDataset, images: torch.Tensor, labels: torch.Tensor, settings: EvalSettings,
                    device: torch.device, progress: bool = True, desc: str = "evaluate",
                    split: str | None = None) -> EvalResult:
    """Train ``settings.n_models`` fresh networks on the images and test each once on
    ``settings.split``. ``split``: deprecated, the same as ``replace(settings, split=split)``."""
    if split is not None:
        settings = replace(settings, split=split)
    target = split_of(dataset, settings.split)
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


def _full_data_set(dataset: BiasedDataset, max_samples: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    index = full_data_index(len(dataset.train), max_samples)
    return torch.from_numpy(dataset.train.images[index]), torch.from_numpy(dataset.train.targets[index])


def evaluate_full_data(dataset: BiasedDataset, settings: EvalSettings, device: torch.device, progress: bool = True,
                       max_samples: int | None = None) -> EvalResult:
    """"No distillation": the same networks trained on the (biased or unbiased) training set for a
    fixed number of epochs."""
    images, labels = _full_data_set(dataset, max_samples)
    return evaluate_images(dataset, images, labels, settings, device, progress, desc="full data")


def evaluate_full_data_converged(dataset: BiasedDataset, settings: FullDataSettings, device: torch.device,
                                 progress: bool = True) -> FullDataResult:
    """"No distillation", converged: ``settings.evaluation.n_models`` networks, one after another
    (seeds as in :func:`evaluate_images`), each trained on the training set until its accuracy on
    ``dataset.valid`` plateaus (:func:`~ddlib.training.plateau.train_until_plateau`), then tested
    once on ``settings.evaluation.split``; the validation curves come with the result.

    Its cost on a CPU (seconds per epoch, epochs to the plateau):
    ``PYTHONPATH=. DDLIB_OFFLINE=1 python -m ddlib.training.timing full-data`` (:mod:`ddlib.training.timing`)."""
    ev = settings.evaluation
    valid = split_of(dataset, "valid")
    target = split_of(dataset, ev.split)
    images, labels = _full_data_set(dataset, settings.max_samples)
    config, rule = settings.train_config(), settings.rule()
    per_model, curves, best, stopped = [], [], [], []
    with precision_context(ev.precision, device):
        for k in range(ev.n_models):
            seed = derive_seed(ev.seed, "eval-model", k)
            run = train_until_plateau(dataset, images, labels, config, seed, device, valid, rule,
                                      show_progress=progress, desc=f"full data [{k + 1}/{ev.n_models}]",
                                      objective=ev.objective)
            per_model.append(split_accuracy(predict(run.model, dataset, torch.from_numpy(target.images), device),
                                            target))
            curves.append(run.curve)
            best.append(run.best_epoch)
            stopped.append(run.stopped_epoch)
    return FullDataResult(tuple(per_model), tuple(curves), tuple(best), tuple(stopped))


# -- cached evaluations ----------------------------------------------------------------------------
def evaluation_key(settings: EvalSettings) -> dict[str, Any]:
    """The settings an evaluation's result depends on, as they enter its cache key."""
    key = {"config": settings.train, "n_models": settings.n_models, "seed": settings.seed,
           "objective": objective_config(settings.objective), "numerics": NUMERICS}
    if settings.precision != "fp32":  # only then: earlier results keep their keys
        key["precision"] = settings.precision
    if settings.split != "test":  # only then: test-split results keep their keys (and their values)
        key["split"] = settings.split
    return key


def _evaluation_code(settings: EvalSettings) -> tuple[Any, ...]:
    """What computes an evaluation: this module and the training objective's (e.g. a de-biasing method)."""
    return (__name__,) if settings.objective is None else (__name__, type(settings.objective))


def _load_eval(artifact: ArtifactDir) -> EvalResult | None:
    if not artifact.is_complete():
        return None
    payload = json.loads(artifact.file("result.json").read_text())
    per_model = tuple(Accuracy(**a) for a in payload["per_model"])
    if "curves" not in payload:
        return EvalResult(per_model)
    return FullDataResult(per_model, tuple(tuple(CurvePoint(**p) for p in c) for c in payload["curves"]),
                          tuple(payload["best_epochs"]), tuple(payload["stopped_epochs"]))


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


def synthetic_tag(syn: SyntheticSet) -> str:
    """``DM+kde ipc=10 seed=0``: which distillation run made ``syn`` (for progress bars)."""
    config = syn.provenance.get("config")
    seed = getattr(config, "seed", None) if not isinstance(config, dict) else config.get("seed")
    return run_tag(syn.method, syn.ipc, syn.provenance.get("weights"), seed)


def evaluate_synthetic_cached(dataset: BiasedDataset, syn: SyntheticSet, settings: EvalSettings,
                              device: torch.device, progress: bool = True) -> EvalResult:
    """:func:`evaluate_images` on a synthetic set, cached by (data set, synthetic content, settings);
    MTT sets with their learned step size (:func:`settings_for`)."""
    settings = settings_for(syn, settings)
    artifact = ArtifactDir("evaluations/synthetic", {"dataset": dataset.fingerprint,
                                                     "synthetic": synthetic_fingerprint(syn),
                                                     **evaluation_key(settings), **numerics_identity(device),
                                                     "format": 2}, code=_evaluation_code(settings))
    with artifact.lock():  # of several processes asking at once, one trains, the others load
        cached = _load_eval(artifact)
        if cached is not None:
            return cached
        result = evaluate_images(dataset, syn.images, syn.labels, settings, device, progress,
                                 desc=f"{synthetic_tag(syn)} · evaluate")
        _store_eval(artifact, result, {"dataset": dataset.display_name, "method": syn.method, "ipc": syn.ipc,
                                       "device": str(device), "finished": _now()})
        return result


def _full_data_key(dataset: BiasedDataset, settings: FullDataSettings) -> dict[str, Any]:
    key = {"dataset": dataset.fingerprint, **evaluation_key(settings.evaluation), "max_samples": settings.max_samples}
    if not settings.converged:  # the fixed-epoch reference keeps its key: its cached results stay valid
        return {**key, "format": 2}
    rule = settings.rule()
    return {**key, "max_epochs": rule.max_epochs, "patience": rule.patience, "min_delta": rule.min_delta,
            "evals_per_epoch": rule.evals_per_epoch, "restore_best": rule.restore_best,
            "valid": _split_digest(dataset.valid), "format": 3}


def _split_digest(split: BiasedSplit | None) -> str | None:
    """What identifies the validation split (the data set's fingerprint may predate it)."""
    if split is None:
        return None
    return tensor_digest(split.images, split.targets, split.bias)


def evaluate_full_data_cached(dataset: BiasedDataset, settings: FullDataSettings, device: torch.device,
                              progress: bool = True) -> EvalResult:
    """:func:`evaluate_full_data` (``settings.patience`` None) or :func:`evaluate_full_data_converged`
    (a :class:`FullDataResult` with the validation curves), cached by (data set, settings, subset size,
    plateau rule, validation split)."""
    artifact = ArtifactDir("evaluations/full", {**_full_data_key(dataset, settings), **numerics_identity(device)},
                           code=_evaluation_code(settings.evaluation))
    with artifact.lock():  # of several processes asking at once, one trains, the others load
        cached = _load_eval(artifact)
        if cached is not None:
            return cached
        if settings.converged:
            result = evaluate_full_data_converged(dataset, settings, device, progress)
        else:
            result = evaluate_full_data(dataset, settings.evaluation, device, progress, settings.max_samples)
        _store_eval(artifact, result, {"dataset": dataset.display_name, "device": str(device), "finished": _now()})
        return result
