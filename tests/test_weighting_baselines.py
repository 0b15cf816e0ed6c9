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


def test_fairdd_weights_are_group_balanced_and_scale_each_class_by_its_group_count():
    from ddlib.weighting.baselines import FairDDWeights
    bias = np.array([0, 0, 0, 1, 2, 2, 1, 0, 0, 0])
    index = torch.tensor([[0, 1, 2, 3], [7, 8, 9, 0]])
    fair = FairDDWeights(bias, "toy")
    # row 0: three samples of attribute 0 and one of 1 → 1/6 each for the three, 1/2 for the one; G = 2
    assert torch.allclose(fair(index)[0], torch.tensor([1 / 6, 1 / 6, 1 / 6, 1 / 2]))
    assert torch.allclose(fair(index), GroupBalancedWeights(bias, "toy")(index))
    assert fair.class_loss_scale(index).tolist() == [2.0, 1.0]
    assert fair.cache_config()["kind"] == "fairdd"


def test_fairdd_loss_on_dm_has_the_gradient_of_the_sum_over_group_means():
    """Σ_g ‖mean_g − mean_syn‖² (FairDD) and G · ‖mean of group means − mean_syn‖² differ by a constant."""
    from ddlib.core.seeding import torch_generator
    from ddlib.distill.dm import dm_loss, dm_loss_per_class
    from ddlib.models import build_convnet
    from ddlib.weighting.baselines import FairDDWeights
    net = build_convnet(3, 2, 28, ConvNetConfig(depth=2, width=8), torch_generator(0))
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(2, 6, 3, 28, 28, generator=gen)
    bias = np.array([0, 0, 0, 1, 1, 2, 1, 1, 1, 1, 0, 1])       # class 0: 3 groups, class 1: 2 groups
    index = torch.arange(12).view(2, 6)
    fair = FairDDWeights(bias, "toy")
    syn = torch.randn(2, 2, 3, 28, 28, generator=gen, requires_grad=True)
    ours = dm_loss(net, real, syn, fair(index), class_scale=fair.class_loss_scale(index))
    (grad_ours,) = torch.autograd.grad(ours, syn)
    with torch.no_grad():
        emb = net.embed(real.flatten(0, 1)).view(2, 6, -1)
    mean_syn = net.embed(syn.flatten(0, 1)).view(2, 2, -1).mean(1)
    direct = sum(((emb[c][torch.from_numpy(bias[index[c].numpy()] == g)].mean(0) - mean_syn[c]) ** 2).sum()
                 for c in range(2) for g in np.unique(bias[index[c].numpy()]))
    (grad_direct,) = torch.autograd.grad(direct, syn)
    assert torch.allclose(grad_ours, grad_direct, rtol=1e-4, atol=1e-6)
    per_class = dm_loss_per_class(net, real, syn, fair(index), class_scale=fair.class_loss_scale(index))
    assert torch.allclose(per_class, ours, rtol=1e-5)
    # the constant: Σ_g ‖m_g − m̄‖² per class, so the two losses differ but not their gradients
    assert not torch.isclose(ours, direct)


def test_fairdd_is_refused_by_methods_without_a_per_class_mean_loss():
    import pytest

    from ddlib.distill.registry import distill
    from ddlib.weighting.baselines import FairDDWeights
    with pytest.raises(ValueError, match="use it with DM"):
        distill("DSA", None, 1, None, weighter=FairDDWeights(np.array([0, 1]), "toy"))
