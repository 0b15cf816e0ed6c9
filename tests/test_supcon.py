import math

import pytest
import torch
import torch.nn.functional as F

from ddlib.kde_supcon.supcon import supcon_loss


def _direct_supcon(features: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Loop-by-loop SupCon (Khosla et al. eq. 2), anchors without positives left out."""
    n, v, _ = features.shape
    z = F.normalize(features.transpose(0, 1).reshape(n * v, -1), dim=1).double()
    y = labels.repeat(v)
    terms = []
    for i in range(n * v):
        others = [a for a in range(n * v) if a != i]
        denom = sum(math.exp(float(z[i] @ z[a]) / temperature) for a in others)
        positives = [p for p in others if y[p] == y[i]]
        if not positives:
            continue
        terms.append(-sum(math.log(math.exp(float(z[i] @ z[p]) / temperature) / denom) for p in positives)
                     / len(positives))
    return torch.tensor(sum(terms) / len(terms) if terms else 0.0)


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_matches_a_direct_small_case_computation(temperature):
    g = torch.Generator().manual_seed(0)
    features = torch.randn(6, 2, 5, generator=g)
    labels = torch.tensor([0, 1, 0, 2, 1, 0])
    loss = supcon_loss(features, labels, temperature)
    assert loss.item() == pytest.approx(_direct_supcon(features, labels, temperature).item(), rel=1e-5)


def test_single_view_with_an_anchor_without_positive_is_finite_and_matches():
    g = torch.Generator().manual_seed(1)
    features = torch.randn(5, 4, generator=g, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 2])  # label 2 has a single sample and a single view
    loss = supcon_loss(features, labels, 0.1)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(_direct_supcon(features.detach().unsqueeze(1), labels, 0.1).item(), rel=1e-5)
    loss.backward()
    assert torch.isfinite(features.grad).all()


def test_no_positive_anywhere_gives_zero_with_a_gradient_path():
    features = torch.randn(4, 3, requires_grad=True)
    loss = supcon_loss(features, torch.arange(4), 0.1)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(features.grad).all()


def test_scale_invariant_and_lower_for_clustered_classes():
    g = torch.Generator().manual_seed(2)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    centres = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    clustered = (centres[labels] + 0.1 * torch.randn(6, 3, generator=g)).unsqueeze(1).repeat(1, 2, 1)
    mixed = torch.randn(6, 2, 3, generator=g)
    assert supcon_loss(clustered, labels) < supcon_loss(mixed, labels)
    assert supcon_loss(3.0 * mixed, labels).item() == pytest.approx(supcon_loss(mixed, labels).item(), rel=1e-5)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="temperature"):
        supcon_loss(torch.randn(3, 2), torch.arange(3), 0.0)
    with pytest.raises(ValueError, match="labels"):
        supcon_loss(torch.randn(3, 2), torch.arange(4))
