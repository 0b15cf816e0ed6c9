import pytest
import torch

from ddlib.augment import DSA, FAMILIES


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("family", FAMILIES)
def test_siamese_draw_is_identical_for_real_and_synthetic(family):
    dsa = DSA(family)
    x = torch.randn(6, 3, 28, 28)
    real, syn = dsa.siamese([x[:3], x[:3].clone()], [torch.zeros(3, dtype=torch.long)] * 2, 1, _gen())
    assert torch.equal(real, syn)


@pytest.mark.parametrize("family", FAMILIES)
def test_group_parameters_are_shared_within_a_group(family):
    dsa = DSA(family)
    x = torch.randn(1, 3, 28, 28).repeat(4, 1, 1, 1)
    params = dsa.draw(2, _gen(3), 28)
    out = dsa.apply(x, params, torch.tensor([0, 0, 1, 1]))
    assert torch.equal(out[0], out[1]) and torch.equal(out[2], out[3])


def test_per_sample_mode_draws_differ_between_samples():
    dsa = DSA("scale")
    x = torch.randn(1, 3, 28, 28).repeat(8, 1, 1, 1)
    out = dsa(x, _gen(1))
    assert not torch.allclose(out[0], out[1])


def test_same_generator_same_augmentation():
    dsa = DSA("color_crop_cutout_flip_scale_rotate")
    x = torch.randn(4, 3, 32, 32)
    assert torch.equal(dsa(x, _gen(5)), dsa(x, _gen(5)))


def test_augmentation_is_differentiable():
    x = torch.randn(2, 3, 28, 28, requires_grad=True)
    for family in FAMILIES:
        DSA(family)(x, _gen(0)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_crop_translates_by_whole_pixels_with_zero_fill():
    dsa = DSA("crop")
    from ddlib.augment.dsa import AugmentParams
    x = torch.arange(16.0).view(1, 1, 4, 4)
    out = dsa.apply(x, AugmentParams("crop", torch.tensor([[1.0, 0.0]])))
    assert torch.equal(out[0, 0, 1:], x[0, 0, :3]) and (out[0, 0, 0] == 0).all()


def test_unknown_family_is_rejected():
    with pytest.raises(ValueError, match="unknown DSA families"):
        DSA("color_blur")
