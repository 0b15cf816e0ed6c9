import torch

from ddlib.training.evaluation import EvalSettings, evaluate_images, split_accuracy
from ddlib.models import ConvNetConfig
from ddlib.training import TrainConfig


def test_trivially_separable_synthetic_set_evaluates_near_perfect(toy_dataset):
    # the real training images themselves as a "synthetic set": classes are bright quadrants
    images = toy_dataset.normalize(toy_dataset.train.images)
    labels = torch.from_numpy(toy_dataset.train.targets)
    cfg = TrainConfig(epochs=15, lr=0.01, batch_size=32, dsa=False, model=ConvNetConfig(depth=2, width=8))
    result = evaluate_images(toy_dataset, images, labels, EvalSettings(cfg, n_models=2), device=torch.device("cpu"),
                             progress=False)
    assert result.mean.overall > 0.95
    assert len(result.per_model) == 2


def test_split_accuracy_separates_aligned_and_conflicting(toy_dataset):
    test = toy_dataset.test
    perfect = split_accuracy(torch.from_numpy(test.targets), test)
    assert perfect.overall == perfect.aligned == perfect.conflicting == 1.0
    # predicting the bias attribute: right on aligned samples, wrong on conflicting ones
    biased = split_accuracy(torch.from_numpy(test.bias), test)
    assert biased.aligned == 1.0 and biased.conflicting == 0.0


def test_mtt_sets_are_evaluated_with_their_learned_step_size():
    from ddlib.distill.synthetic import SyntheticSet
    from ddlib.training.evaluation import settings_for
    settings = EvalSettings(TrainConfig(epochs=2, lr=0.01), n_models=1)
    images, labels = torch.zeros(2, 3, 8, 8), torch.tensor([0, 1])
    mtt = SyntheticSet(images, labels, 1, "MTT", {"final_syn_lr": 0.0123})
    dm = SyntheticSet(images, labels, 1, "DM", {"final_syn_lr": 0.5})   # only MTT learns a step size
    assert settings_for(mtt, settings).train.lr == 0.0123
    assert settings_for(dm, settings) is settings


def test_vanilla_dm_keeps_the_reference_image_lr_beside_the_reweighted_run():
    from ddlib.profiles import PROFILES
    k = PROFILES["quick"].kde_method
    assert k.dm_for(weighted=False).lr_img == 1.0 and k.dm_for(weighted=True) == k.dm
    assert k.dm_for(weighted=False).iterations == k.dm.iterations


# -- the split the networks are tested on ----------------------------------------------------------
def _tiny_settings(**kw):
    cfg = TrainConfig(epochs=2, lr=0.01, batch_size=32, dsa=False, model=ConvNetConfig(depth=2, width=8))
    return EvalSettings(cfg, n_models=1, **kw)


def _with_valid():
    import dataclasses
    from tests.conftest import make_toy_dataset
    ds = make_toy_dataset(n_per_class=12)
    # a validation split unlike the test split: the test split's labels shifted by one
    test = ds.test
    valid = dataclasses.replace(test, targets=(test.targets + 1) % 3)
    return dataclasses.replace(ds, valid=valid)


def test_valid_and_test_evaluations_are_separate_cache_entries(isolated_cache):
    from dataclasses import replace
    from ddlib.distill.synthetic import SyntheticSet
    from ddlib.training.evaluation import evaluate_synthetic_cached
    ds = _with_valid()
    syn = SyntheticSet(ds.normalize(ds.train.images[::10]), torch.from_numpy(ds.train.targets[::10]), 4, "DM", {})
    settings = _tiny_settings()
    on_test = evaluate_synthetic_cached(ds, syn, settings, torch.device("cpu"), progress=False)
    on_valid = evaluate_synthetic_cached(ds, syn, replace(settings, split="valid"), torch.device("cpu"), progress=False)
    assert on_test != on_valid  # the valid labels differ, so the same networks score differently
    assert len([p for p in (isolated_cache / "evaluations" / "synthetic").iterdir() if p.is_dir()]) == 2
    # the same networks as a direct evaluation on the split; the deprecated argument agrees
    direct = evaluate_images(ds, syn.images, syn.labels, settings, torch.device("cpu"), progress=False, split="valid")
    assert direct == on_valid


def test_test_split_keys_are_unchanged_and_valid_keys_differ():
    from dataclasses import replace
    from ddlib.training.evaluation import evaluation_key
    settings = _tiny_settings()
    assert "split" not in evaluation_key(settings)  # earlier test-split results keep their cache entries
    assert evaluation_key(replace(settings, split="valid"))["split"] == "valid"


def test_a_missing_split_is_a_clear_error(toy_dataset):
    import dataclasses
    import pytest
    toy_dataset = dataclasses.replace(toy_dataset, valid=None)
    images = toy_dataset.normalize(toy_dataset.train.images[:6])
    labels = torch.from_numpy(toy_dataset.train.targets[:6])
    with pytest.raises(ValueError, match="has no 'valid' split; "):
        evaluate_images(toy_dataset, images, labels, _tiny_settings(split="valid"), torch.device("cpu"), progress=False)
    with pytest.raises(ValueError, match="split must be one of"):
        _tiny_settings(split="validation")
