"""The converged "no distillation" reference: training until the validation plateau, the curve, the cache."""

import dataclasses

import pytest
import torch

from ddlib.models import ConvNetConfig
from ddlib.training import TrainConfig, train_classifier
from ddlib.training.evaluation import (EvalSettings, FullDataResult, FullDataSettings, _full_data_key,
                                       evaluation_key, evaluate_full_data_cached)
from ddlib.training.plateau import PlateauRule, _batch_cuts, train_until_plateau
from tests.conftest import make_toy_dataset

CPU = torch.device("cpu")
TINY = TrainConfig(epochs=30, lr=0.01, batch_size=32, dsa=False, model=ConvNetConfig(depth=2, width=8))


def with_valid(seed: int = 0):
    """The toy data set with a validation split (drawn like its test split, other noise)."""
    ds = make_toy_dataset(seed=seed)
    return dataclasses.replace(ds, valid=make_toy_dataset(seed=seed + 100).test, fingerprint=f"{ds.fingerprint}-v")


def training_set(ds):
    return torch.from_numpy(ds.train.images), torch.from_numpy(ds.train.targets)


def test_training_stops_at_the_validation_plateau_and_records_the_curve():
    ds = with_valid()
    images, labels = training_set(ds)
    rule = PlateauRule(max_epochs=30, patience=2, evals_per_epoch=2)
    run = train_until_plateau(ds, images, labels, TINY, 1, CPU, ds.valid, rule)
    assert run.plateaued and run.stopped_epoch < 30
    assert [p.epoch for p in run.curve] == [0.5 * (i + 1) for i in range(len(run.curve))]
    assert run.curve[-1].epoch == run.stopped_epoch
    best = max(p.overall for p in run.curve)
    assert best > 0.95  # the toy set saturates
    # the kept state is the best evaluation's, ``patience`` evaluations before the stop
    assert run.best_epoch == pytest.approx(run.stopped_epoch - 2 * 0.5)
    assert [p.overall for p in run.curve if p.epoch == run.best_epoch] == [best]
    assert not run.model.training


def test_evaluating_inside_epochs_leaves_the_training_unchanged():
    ds = with_valid()
    images, labels = training_set(ds)
    config = dataclasses.replace(TINY, epochs=3)
    plain = train_classifier(ds, images, labels, config, 7, CPU)
    rule = PlateauRule(max_epochs=3, patience=100, evals_per_epoch=3, restore_best=False)
    run = train_until_plateau(ds, images, labels, config, 7, CPU, ds.valid, rule)
    assert not run.plateaued and run.stopped_epoch == 3 and len(run.curve) == 9
    for a, b in zip(plain.state_dict().values(), run.model.state_dict().values()):
        assert torch.equal(a, b)


def test_batch_cuts_are_whole_batches():
    assert _batch_cuts(100, 32, 1) == [(0, 100)]
    assert _batch_cuts(100, 32, 2) == [(0, 64), (64, 100)]
    assert _batch_cuts(10, 32, 4) == [(0, 10)]  # fewer batches than evaluations: one per batch


def test_converged_full_data_trains_n_models_caches_the_curves_and_round_trips(isolated_cache, monkeypatch):
    ds = with_valid()
    settings = FullDataSettings(EvalSettings(TINY, n_models=2), max_epochs=30, patience=2)
    result = evaluate_full_data_cached(ds, settings, CPU, progress=False)
    assert isinstance(result, FullDataResult)
    assert len(result.per_model) == len(result.curves) == len(result.stopped_epochs) == 2
    assert all(s < 30 for s in result.stopped_epochs)
    table = result.curve_table()
    assert list(table["model"].unique()) == [0, 1] and len(table) == sum(map(len, result.curves))
    assert result.mean.overall > 0.9

    def fail(*args, **kwargs):
        raise AssertionError("a cached converged evaluation was recomputed")
    monkeypatch.setattr("ddlib.training.evaluation.evaluate_full_data_converged", fail)
    again = evaluate_full_data_cached(ds, settings, CPU, progress=False)
    assert again == result and again.curves == result.curves
    with pytest.raises(AssertionError, match="recomputed"):  # another patience is another entry
        evaluate_full_data_cached(ds, dataclasses.replace(settings, patience=3), CPU, progress=False)


def test_the_fixed_epoch_reference_keeps_its_cache_key():
    ds = make_toy_dataset()
    ev = EvalSettings(TINY, n_models=1)
    fixed = FullDataSettings(ev, max_samples=100)
    assert not fixed.converged and fixed.train_config() == TINY
    assert _full_data_key(ds, fixed) == {"dataset": ds.fingerprint, **evaluation_key(ev), "max_samples": 100,
                                         "format": 2}
    converged = FullDataSettings(ev, max_epochs=5, patience=2)
    key = _full_data_key(with_valid(), converged)
    assert key["format"] == 3 and key["patience"] == 2 and key["max_epochs"] == 5 and key["valid"]
    assert converged.train_config().epochs == 5  # the schedule follows the epoch budget


def test_converged_full_data_needs_a_validation_split(isolated_cache):
    settings = FullDataSettings(EvalSettings(TINY, n_models=1), max_epochs=2, patience=1)
    with pytest.raises(ValueError, match="has no 'valid' split"):
        evaluate_full_data_cached(make_toy_dataset(with_valid=False), settings, CPU, progress=False)


def test_plateau_settings_are_checked():
    with pytest.raises(ValueError, match="patience"):
        FullDataSettings(EvalSettings(TINY, n_models=1), patience=0)
    with pytest.raises(ValueError, match="max_epochs"):
        PlateauRule(max_epochs=0, patience=1)
