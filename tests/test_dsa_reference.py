"""Each DSA family pinned on hand-made images against values computed from the reference's formulas
(the DSA code of Zhao & Bilen, the same in DC, DM and MTT), written out here without ddlib.

The reference, per family (``ratio_*`` its defaults):

* color: ``x + (b - 0.5)``; then ``(x - m) * (2 s) + m`` with ``m`` the per-pixel channel mean; then
  ``(x - M) * (c + 0.5) + M`` with ``M`` the image mean; b, s, c ~ U(0, 1);
* crop: ``out[i, j] = x[i + tx, j + ty]``, zero outside, tx, ty integers in [-shift, shift],
  shift = int(size · 0.125 + 0.5);
* cutout: a square of side ``k = int(size · 0.5 + 0.5)`` with rows ``o - k // 2 … o - k // 2 + k - 1``
  (clamped to the image), ``o`` an integer in [0, size + (1 - k % 2)); the same for the columns;
* flip: ``x.flip(3)`` where ``u < 0.5``;
* scale: ``affine_grid([[sx, 0, 0], [0, sy, 0]], align_corners=True)``, sx, sy ~ U(1/1.2, 1.2);
* rotate: ``affine_grid([[cos t, -sin t, 0], [sin t, cos t, 0]], align_corners=True)``, t ~ U(-15°, 15°).

One convention differs: our crop parameter is the reference's translation with the opposite sign
(``out[i] = x[i - v]``). Both are drawn uniformly from the same symmetric integer range, so the
augmentations have the same distribution; the test below states the correspondence.
"""

from __future__ import annotations

import math

import pytest
import torch

from ddlib.augment import DSA
from ddlib.augment.dsa import AugmentParams


def _apply(family: str, x: torch.Tensor, *values: float, **options) -> torch.Tensor:
    return DSA(family, **options).apply(x, AugmentParams(family, torch.tensor([values], dtype=torch.float)))


def _draws(family: str, size: int, n: int = 4000) -> torch.Tensor:
    return DSA(family).draw(n, torch.Generator().manual_seed(0), size).values


def test_color_is_brightness_then_saturation_then_contrast():
    # two pixels: (0, 0.3, 0.6) and (1, 1, 1); b = 0.75 (+0.25), s = 0.25 (× 0.5), c = 0.9 (× 1.4)
    x = torch.tensor([[0.0, 1.0], [0.3, 1.0], [0.6, 1.0]]).view(1, 3, 1, 2)
    # by hand: brightness → (0.25, 0.55, 0.85), (1.25, 1.25, 1.25); saturation around the pixel means
    # 0.55 and 1.25 → (0.40, 0.55, 0.70), (1.25, 1.25, 1.25); contrast around the image mean 0.9
    expected = torch.tensor([[0.9 + 1.4 * (0.40 - 0.9), 0.9 + 1.4 * 0.35],
                             [0.9 + 1.4 * (0.55 - 0.9), 0.9 + 1.4 * 0.35],
                             [0.9 + 1.4 * (0.70 - 0.9), 0.9 + 1.4 * 0.35]]).view(1, 3, 1, 2)
    assert torch.allclose(_apply("color", x, 0.75, 0.25, 0.9), expected, atol=1e-6)
    assert torch.allclose(expected.flatten(), torch.tensor([0.2, 1.39, 0.41, 1.39, 0.62, 1.39]), atol=1e-6)


@pytest.mark.parametrize("tx,ty", [(1, -2), (-3, 0), (0, 4)])
def test_crop_is_the_reference_translation_with_the_opposite_sign(tx, ty):
    x = torch.arange(1.0, 37.0).view(1, 1, 6, 6)
    reference = torch.zeros_like(x)
    for i in range(6):
        for j in range(6):
            if 0 <= i + tx < 6 and 0 <= j + ty < 6:
                reference[0, 0, i, j] = x[0, 0, i + tx, j + ty]
    assert torch.equal(_apply("crop", x, -tx, -ty), reference)


@pytest.mark.parametrize("size,shift", [(28, 4), (32, 4), (64, 8)])
def test_crop_draws_every_integer_shift_of_an_eighth_of_the_side(size, shift):
    v = _draws("crop", size)
    assert set(v.flatten().tolist()) == set(map(float, range(-shift, shift + 1)))


@pytest.mark.parametrize("row,col", [(0, 5), (8, 0), (3, 3), (7, 2)])
def test_cutout_zeroes_the_reference_square(row, col):
    # 8 × 8, side k = int(8 · 0.5 + 0.5) = 4: rows row - 2 … row + 1 (clamped), the same for columns
    x = torch.arange(1.0, 65.0).view(1, 1, 8, 8)
    k = int(8 * 0.5 + 0.5)
    mask = torch.ones(8, 8)
    for a in range(k):
        for b in range(k):
            mask[min(max(row + a - k // 2, 0), 7), min(max(col + b - k // 2, 0), 7)] = 0
    assert torch.equal(_apply("cutout", x, row, col), x * mask)


@pytest.mark.parametrize("size,largest", [(28, 28), (32, 32), (26, 25)])
def test_cutout_centres_are_drawn_as_the_reference_draws_them(size, largest):
    # randint(0, size + (1 - k % 2)): an even side k (28 → 14, 32 → 16) reaches size itself, an odd one
    # (26 → 13) stops at size - 1
    v = _draws("cutout", size)
    assert v.min() == 0 and v.max() == largest


def test_flip_mirrors_the_width_and_is_drawn_with_probability_one_half():
    x = torch.arange(6.0).view(1, 1, 2, 3)
    assert torch.equal(_apply("flip", x, 1.0), x.flip(3)) and torch.equal(_apply("flip", x, 0.0), x)
    share = _draws("flip", 28).mean().item()
    assert abs(share - 0.5) < 0.03  # 4,000 draws: the std of the share is 0.008


def test_scale_samples_the_input_at_the_scaled_coordinates():
    # a 3 × 5 ramp along the width; sx = 0.5: output column j samples input column (0.5 u_j + 1) · 2,
    # u_j = j / 2 - 1 (align_corners), i.e. columns 1, 1.5, 2, 2.5, 3: a zoom in, the rows unchanged (sy = 1)
    x = torch.arange(5.0).repeat(3, 1).view(1, 1, 3, 5)
    out = _apply("scale", x, 0.5, 1.0)
    assert torch.allclose(out, torch.tensor([1.0, 1.5, 2.0, 2.5, 3.0]).repeat(3, 1).view(1, 1, 3, 5), atol=1e-6)


def test_scale_draws_lie_between_one_over_and_the_ratio():
    v = _draws("scale", 28)
    assert v.min() >= 1 / 1.2 and v.max() < 1.2 and v.max() - v.min() > 0.3


def test_rotate_turns_the_content_anticlockwise():
    # t = 90° on a 3 × 3 image (align_corners: the normalised coordinates are the pixel centres -1, 0, 1):
    # output (row r, column c) samples the input at x' = -(r - 1), y' = c - 1, i.e. out[r, c] = x[c, 2 - r]
    x = torch.arange(9.0).view(1, 1, 3, 3)
    reference = torch.tensor([[x[0, 0, c, 2 - r].item() for c in range(3)] for r in range(3)]).view(1, 1, 3, 3)
    assert torch.allclose(_apply("rotate", x, math.pi / 2), reference, atol=1e-5)
    # the top-right pixel goes to the top-left: anticlockwise, as the reference's comment says
    assert reference[0, 0, 0, 0] == x[0, 0, 0, 2]


def test_rotate_draws_lie_within_fifteen_degrees():
    v = _draws("rotate", 28)
    assert v.abs().max() <= 15 / 180 * math.pi and v.abs().max() > 14 / 180 * math.pi


@pytest.mark.parametrize("family", ["color", "crop", "cutout", "scale", "rotate"])
def test_siamese_applies_one_draw_per_group_to_each_batch(family):
    """Not only "the same input gives the same output": the real and the synthetic batch, different images,
    get exactly the parameters of one draw, group by group, and another draw gives another result."""
    dsa = DSA(family)
    real, syn = torch.rand(5, 3, 28, 28), torch.rand(2, 3, 28, 28)
    real_groups, syn_groups = torch.tensor([0, 0, 1, 1, 1]), torch.tensor([0, 1])
    out_real, out_syn = dsa.siamese([real, syn], [real_groups, syn_groups], 2, torch.Generator().manual_seed(7))
    params = dsa.draw(2, torch.Generator().manual_seed(7), 28)
    assert torch.equal(out_real, dsa.apply(real, params, real_groups))
    assert torch.equal(out_syn, dsa.apply(syn, params, syn_groups))
    other = dsa.draw(2, torch.Generator().manual_seed(8), 28)
    if other.family == params.family:
        assert not torch.equal(out_syn, dsa.apply(syn, other, syn_groups))
