"""One interface for every distillation method: names, configs from profiles, end-to-end runs."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from ddlib.distill import DCConfig, DMConfig, MTTConfig, SyntheticSet, UniformWeights, distill, method_config
from ddlib.distill.registry import METHODS
from ddlib.profiles import PROFILES, get_profile
from conftest import tiny_dataset

pytestmark = pytest.mark.usefixtures("isolated_cache")  # a fresh artifact cache per test






def test_unknown_method_names_the_known_ones():
    with pytest.raises(ValueError, match="known methods: dm, dc, dsa, mtt"):
        distill("kip", tiny_dataset(), 1, get_profile("smoke"))


def test_configs_come_from_the_profile_and_dsa_is_dc_with_augmentation():
    smoke = get_profile("smoke")
    assert method_config("dm", smoke) == smoke.kde_method.dm_for(weighted=False)
    assert method_config("dc", smoke) == dataclasses.replace(smoke.dc, dsa=False)
    assert method_config("dsa", smoke) == dataclasses.replace(smoke.dc, dsa=True)
    assert method_config("DSA", DCConfig()).dsa is True  # a config works too; names are case-insensitive
    assert isinstance(method_config("mtt", smoke), MTTConfig)
    with pytest.raises(TypeError, match="MTTConfig"):
        method_config("mtt", DMConfig())


@pytest.mark.parametrize("name", list(PROFILES))
def test_every_profile_configures_every_method(name):
    profile = get_profile(name)
    for method in METHODS:
        config = method_config(method, profile)
        assert config.model == profile.model
    schedule = profile.mtt.schedule_for(max(profile.ipcs))
    assert profile.mtt.experts.epochs >= schedule.max_start_epoch + schedule.expert_epochs


@pytest.mark.parametrize("method", ["dm", "dc", "dsa", "mtt"])
def test_every_method_runs_through_one_call_and_is_cached(method):
    ds = tiny_dataset()
    smoke = get_profile("smoke")
    syn = distill(method, ds, 2, smoke, device="cpu", progress=False)
    assert isinstance(syn, SyntheticSet)
    assert syn.method == METHODS[method].display_name and syn.ipc == 2
    assert syn.images.shape == (6, 3, 16, 16) and syn.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert torch.isfinite(syn.images).all()
    assert syn.provenance["dataset_fingerprint"] == ds.fingerprint and syn.provenance["method"] == syn.method
    again = distill(method, ds, 2, smoke, device="cpu", progress=False)
    assert torch.equal(again.images, syn.images)
    weighted = distill(method, ds, 2, smoke, weighter=UniformWeights(), device="cpu", progress=False)
    assert torch.allclose(weighted.images, syn.images, atol=1e-4)  # uniform weights: vanilla


def test_dm_image_steps_lower_its_loss():
    """DC and MTT have their own descent tests (test_dc.py, test_mtt.py); this is DM's."""
    from ddlib.distill import dm_loss
    from ddlib.models import ConvNetConfig, build_convnet

    gen = torch.Generator().manual_seed(0)
    net = build_convnet(3, 3, 16, ConvNetConfig(depth=2, width=8), gen).requires_grad_(False)
    real = torch.randn(3, 8, 3, 16, 16, generator=gen)
    syn = torch.randn(3, 2, 3, 16, 16, generator=gen).requires_grad_(True)
    optimizer = torch.optim.SGD([syn], lr=1.0, momentum=0.5)
    losses = []
    for _ in range(5):
        loss = dm_loss(net, real, syn)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0], losses
