"""Trajectory matching (MTT): the loss, the unrolled student, cached experts, weights, descent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ddlib.augment import DSA
from ddlib.distill import mtt as mtt_module
from ddlib.distill.mtt import (ExpertConfig, FlatParams, MTTConfig, MTTSchedule, distill_mtt, expert_sample_weights,
                               load_experts, parameter_distance_loss, trajectory_loss, unroll_student)
from ddlib.weighting.base import FixedWeights, UniformWeights
from ddlib.models import ConvNetConfig, build_convnet
from conftest import tiny_dataset

pytestmark = pytest.mark.usefixtures("isolated_cache")  # a fresh artifact cache per test

TINY = ConvNetConfig(depth=2, width=8)






EXPERTS = ExpertConfig(count=2, epochs=3, batch_size=16, model=TINY)


def _config(**kw) -> MTTConfig:
    schedule = MTTSchedule(ipc=2, syn_steps=3, expert_epochs=1, max_start_epoch=2, lr_img=10.0, lr_lr=1e-5,
                           lr_teacher=0.01, batch_syn=4)
    base = dict(iterations=3, schedules=(schedule,), model=TINY, experts=EXPERTS, checkpoint_every=0)
    return MTTConfig(**{**base, **kw})


def _student(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    net = build_convnet(3, 3, 16, TINY, gen)
    start = FlatParams(net).flatten(net)
    syn = torch.randn(6, 3, 16, 16, generator=gen)
    labels = torch.arange(3).repeat_interleave(2)
    return net, start, syn, labels, gen


# -- the loss ------------------------------------------------------------------------------------
def test_loss_is_zero_when_the_student_lands_on_the_target():
    start, target = torch.randn(50), torch.randn(50)
    assert float(parameter_distance_loss(target, start, target)) == 0.0
    assert float(parameter_distance_loss(start, start, target)) == pytest.approx(1.0)  # no progress: 1

    # the real unroll: a target made by replaying the student's own steps is hit exactly
    net, start, syn, labels, _ = _student()
    lr = torch.tensor(0.05)
    dsa = DSA("color_crop_cutout_flip_scale_rotate")
    target = unroll_student(net, start, syn, labels, lr, 4, 4, torch.Generator().manual_seed(5), dsa,
                            torch.Generator().manual_seed(6)).detach()
    loss = trajectory_loss(net, start, target, syn, labels, lr, 4, 4, torch.Generator().manual_seed(5), dsa,
                           torch.Generator().manual_seed(6))
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-10)


def test_unrolled_student_matches_plain_sgd():
    """Without augmentation and with one full batch, the unroll is ordinary SGD on the network."""
    net, start, syn, labels, _ = _student(1)
    end = unroll_student(net, start, syn, labels, torch.tensor(0.1), 3, None, torch.Generator().manual_seed(0))
    model = build_convnet(3, 3, 16, TINY, torch.Generator().manual_seed(1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(syn), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.allclose(end.detach(), FlatParams(model).flatten(model), atol=1e-6)


def test_checkpointed_steps_give_the_same_loss_and_gradients():
    net, start, syn, labels, gen = _student(2)
    target = start + 0.05 * torch.randn(start.shape, generator=gen)
    out = []
    for checkpoint_steps in (False, True):
        s = syn.clone().requires_grad_(True)
        lr = torch.tensor(0.02, requires_grad=True)
        loss = trajectory_loss(net, start, target, s, labels, lr, 3, 4, torch.Generator().manual_seed(0),
                               DSA(), torch.Generator().manual_seed(1), checkpoint_steps)
        out.append((loss.detach(), *torch.autograd.grad(loss, [s, lr])))
    for a, b in zip(*out):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-8)


def test_a_few_iterations_lower_the_loss_on_a_fixed_segment():
    net, start, syn, labels, gen = _student(3)
    model = build_convnet(3, 3, 16, TINY, torch.Generator().manual_seed(3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    real = torch.randn(12, 3, 16, 16, generator=gen)
    real_labels = torch.arange(3).repeat_interleave(4)
    for _ in range(5):  # a short "expert" segment on other data
        loss = torch.nn.functional.cross_entropy(model(real), real_labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    target = FlatParams(model).flatten(model)
    syn = syn.requires_grad_(True)
    lr = torch.tensor(0.05, requires_grad=True)
    opt_img = torch.optim.SGD([syn], lr=10.0, momentum=0.5)
    losses = []
    for _ in range(10):
        loss = trajectory_loss(net, start, target, syn, labels, lr, 3, None, torch.Generator().manual_seed(0))
        opt_img.zero_grad()
        loss.backward()
        opt_img.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.9 * losses[0], losses


# -- experts -------------------------------------------------------------------------------------
def test_experts_are_reused_from_the_cache(monkeypatch):
    ds = tiny_dataset()
    first, keys = load_experts(ds, EXPERTS, progress=False)
    assert len(first) == 2 and first[0].shape == (EXPERTS.epochs + 1, FlatParams(
        build_convnet(3, 3, 16, TINY, torch.Generator())).size)
    assert not torch.equal(first[0][0], first[0][-1]) and not torch.equal(first[0], first[1])

    trained = []
    real_train = mtt_module.train_expert

    def counting(*args, **kwargs):
        trained.append(args[2])
        return real_train(*args, **kwargs)
    monkeypatch.setattr(mtt_module, "train_expert", counting)
    again, keys_again = load_experts(ds, EXPERTS, progress=False)
    assert trained == [] and keys_again == keys
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    more, _ = load_experts(ds, ExpertConfig(**{**EXPERTS.__dict__, "count": 3}), progress=False)
    assert trained == [2]  # raising the count trains only the new expert
    assert torch.equal(more[1], first[1])


def test_uniform_weights_reproduce_unweighted_experts_and_distillation():
    ds = tiny_dataset()
    weights = expert_sample_weights(ds, UniformWeights())
    assert torch.allclose(weights, torch.ones(len(ds.train)))
    plain, _ = load_experts(ds, EXPERTS, progress=False)
    uniform, _ = load_experts(ds, EXPERTS, weights, {"kind": "uniform"}, progress=False)
    for a, b in zip(plain, uniform):
        assert torch.allclose(a, b, atol=1e-5)
    vanilla = distill_mtt(ds, 2, _config(), progress=False)
    weighted = distill_mtt(ds, 2, _config(), UniformWeights(), progress=False)
    assert torch.allclose(vanilla.images, weighted.images, atol=1e-4)
    assert vanilla.provenance["weights"] != weighted.provenance["weights"]  # separate cache entries


def test_non_uniform_weights_change_the_experts():
    ds = tiny_dataset()
    scores = torch.ones(len(ds.train))
    scores[::2] = 5.0
    weights = expert_sample_weights(ds, FixedWeights(scores, "alternate"))
    plain, _ = load_experts(ds, EXPERTS, progress=False)
    weighted, _ = load_experts(ds, EXPERTS, weights, progress=False)
    assert not torch.allclose(plain[0][-1], weighted[0][-1])
    with pytest.raises(ValueError, match="one entry per training sample"):
        load_experts(ds, EXPERTS, torch.ones(5), progress=False)


# -- the distillation loop -----------------------------------------------------------------------
def test_distill_mtt_end_to_end_and_cached(monkeypatch):
    ds = tiny_dataset()
    result = distill_mtt(ds, 2, _config(), progress=False)
    assert result.method == "MTT" and result.images.shape == (6, 3, 16, 16)
    assert result.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert len(result.provenance["expert_keys"]) == 2 and np.isfinite(result.provenance["final_loss"])
    start = ds.normalize(ds.train.images[result.provenance["init_index"]])
    assert not torch.allclose(result.images, start)

    def fail(*args, **kwargs):
        raise AssertionError("a cached synthetic set must not be recomputed")
    monkeypatch.setattr(mtt_module, "trajectory_loss", fail)
    assert torch.equal(distill_mtt(ds, 2, _config(), progress=False).images, result.images)


def test_distill_mtt_resumes_from_a_checkpoint():
    ds = tiny_dataset()
    config = _config(iterations=4, checkpoint_every=2)
    uninterrupted = distill_mtt(ds, 2, config, progress=False, use_cache=False)

    def crash(it, loss):  # interrupted in iteration 3 (a checkpoint exists after 2)
        if it == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        distill_mtt(ds, 2, config, progress=False, on_step=crash)
    resumed = distill_mtt(ds, 2, config, progress=False)
    assert torch.allclose(resumed.images, uninterrupted.images, atol=1e-6)
    assert resumed.provenance["final_syn_lr"] == pytest.approx(uninterrupted.provenance["final_syn_lr"])


def test_experts_too_short_for_the_schedule_are_rejected():
    config = _config(experts=ExpertConfig(count=1, epochs=2, model=TINY))  # needs 2 + 1 epochs
    with pytest.raises(ValueError, match="ExpertConfig.epochs"):
        distill_mtt(tiny_dataset(), 2, config, progress=False)


def test_student_and_experts_must_share_the_architecture():
    with pytest.raises(ValueError, match="share one ConvNet"):
        MTTConfig(model=TINY, experts=ExpertConfig(model=ConvNetConfig(depth=3, width=8)))
