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
