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
