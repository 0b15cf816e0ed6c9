import numpy as np
import torch

from ddlib.training import EvalSettings, TrainConfig
from ddlib.models import ConvNetConfig
from ddlib.weighting.baselines import ConflictingOnlyWeights, ErrorSetWeights, GroupBalancedWeights, erm_error_set


def test_group_balanced_weights_give_each_group_equal_total_weight():
    bias = np.array([0, 0, 0, 1, 2, 2, 1, 0, 0, 0])
    w = GroupBalancedWeights(bias, "toy")(torch.tensor([[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 0, 1]]))
    assert torch.allclose(w.sum(dim=1), torch.ones(2))
    for row, idx in zip(w, ([0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 0, 1])):
        groups = {}
        for weight, i in zip(row.tolist(), idx):
            groups.setdefault(int(bias[i]), []).append(weight)
        totals = [sum(v) for v in groups.values()]
        assert np.allclose(totals, 1 / len(groups))        # every present group: the same total
        for v in groups.values():                         # equal within a group
            assert np.allclose(v, v[0])


def test_error_set_weights_upweight_exactly_the_misclassified_samples():
    error = np.zeros(8, dtype=bool)
    error[[1, 5]] = True
    w = ErrorSetWeights(error, upweight=20)(torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]]))
    assert torch.allclose(w.sum(dim=1), torch.ones(2))
    assert torch.allclose(w[0], torch.tensor([1, 20, 1, 1]) / 23.0)
    assert torch.allclose(w[1], torch.tensor([1, 20, 1, 1]) / 23.0)
    ratio = w[0, 1] / w[0, 0]
    assert torch.isclose(ratio, torch.tensor(20.0))


def test_conflicting_only_weights_ignore_aligned_samples_and_fall_back_to_uniform():
    conflicting = np.array([False, True, False, False, False, False])
    w = ConflictingOnlyWeights(conflicting, "toy")(torch.tensor([[0, 1, 2], [3, 4, 5]]))
    assert torch.allclose(w[0], torch.tensor([0.0, 1.0, 0.0]), atol=1e-5)
    assert torch.allclose(w[1], torch.full((3,), 1 / 3))   # no conflicting sample in the batch: uniform


def test_erm_error_set_marks_misclassified_training_samples(toy_dataset, isolated_cache):
    settings = EvalSettings(TrainConfig(epochs=2, batch_size=32, dsa=False, model=ConvNetConfig(depth=2, width=8)),
                            n_models=1)
    error = erm_error_set(toy_dataset, settings, progress=False)
    assert error.shape == (len(toy_dataset.train),) and error.dtype == bool
    again = erm_error_set(toy_dataset, settings, progress=False)   # from the cache
    assert np.array_equal(error, again)
