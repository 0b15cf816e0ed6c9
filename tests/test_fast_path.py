"""The fast device path: the CPU path unchanged bit for bit, device-side sampling, the precision
switch, k evaluation models trained at once, and the headline runner (smoke-sized).

The device-resident code runs here on the CPU (``device_resident=True``): the same code a GPU
runs, with CPU generators standing in for CUDA ones."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_toy_dataset, tiny_dataset
from ddlib.core.precision import precision_context
from ddlib.distill import UniformWeights, distill_dm
from ddlib.distill.dc import DCConfig, distill_dc
from ddlib.distill.dm import DeviceClassSampler, DMConfig, DMMethod
from ddlib.distill.mtt import ExpertConfig, MTTConfig, MTTSchedule, distill_mtt
from ddlib.models import ConvNetConfig
from ddlib.training.batched import train_classifiers_batched
from ddlib.training.evaluation import EvalSettings, evaluate_images
from ddlib.training.loop import train_classifier
from ddlib.training.objectives import TrainConfig, WeightedCrossEntropy

TINY = ConvNetConfig(depth=2, width=8)
CPU = torch.device("cpu")
DM_TINY = DMConfig(iterations=6, batch_real=8, model=TINY, checkpoint_every=0)
# where DM learns on the toy: at the reference's lr 1 its loss on fixed networks rises (4.6× in 20
# iterations), at 0.1 it falls
DM_LEARNS = dataclasses.replace(DM_TINY, lr_img=0.1)

# The results of the CPU path at 866283a (tests/data/cpu_path_reference.npz, same settings as below),
# whose digests matched, on the 2-core AMD EPYC that built them, those of the code before the fast
# path existed. Another CPU picks other oneDNN kernels and rounds differently (an Intel Xeon's digests
# differ), so the results are compared within a tolerance far below what any change of the
# computation gives (another random stream or loss moves the images by ~0.1), not bit for bit.
REFERENCE = Path(__file__).parent / "data" / "cpu_path_reference.npz"
ROUNDING = 1e-4


def test_cpu_path_is_what_it_was(isolated_cache):
    with np.load(REFERENCE) as ref:
        expected = {k: torch.from_numpy(ref[k]) for k in ref.files}
    ds = make_toy_dataset()
    dm = distill_dm(ds, 2, DM_TINY, progress=False, use_cache=False)
    dsa = distill_dc(ds, 2, DCConfig(iterations=2, batch_real=8, model=TINY, dsa=True, checkpoint_every=0),
                     progress=False, use_cache=False)
    schedule = MTTSchedule(ipc=2, syn_steps=3, expert_epochs=1, max_start_epoch=2, lr_img=10.0, lr_lr=1e-5,
                           lr_teacher=0.01, batch_syn=4)
    mtt = distill_mtt(tiny_dataset(), 2, MTTConfig(iterations=3, schedules=(schedule,), model=TINY,
                                                   experts=ExpertConfig(count=2, epochs=3, batch_size=16, model=TINY),
                                                   checkpoint_every=0), progress=False, use_cache=False)
    model = train_classifier(ds, dm.images, dm.labels, TrainConfig(epochs=3, batch_size=4, model=TINY), 7, CPU)
    got = {"dm": dm.images, "dsa": dsa.images, "mtt": mtt.images,
           "train": torch.cat([p.detach().flatten() for p in model.parameters()])}
    for name, value in got.items():
        assert value.shape == expected[name].shape, name
        gap = (value - expected[name]).abs().max().item()
        assert gap < ROUNDING, f"{name}: {gap:.2e} from the reference (rounding stays below {ROUNDING})"
        # and the distillation moved the images well beyond that tolerance: the check can see a change
    assert (dm.images - distill_dm(ds, 2, dataclasses.replace(DM_TINY, iterations=0), progress=False,
                                   use_cache=False).images).abs().max() > 1000 * ROUNDING


def test_fast_path_fields_stay_out_of_the_default_cache_key():
    ds = make_toy_dataset()
    key = DMMethod(ds, 2, DM_TINY, None, CPU).cache_key()
    assert "precision" not in key["config"] and "device_resident" not in key["config"]
    assert "sampling" not in key and "precision" not in key
    resident = DMMethod(ds, 2, dataclasses.replace(DM_TINY, device_resident=True, precision="bf16"), None, CPU)
    assert resident.cache_key()["sampling"] == "device" and resident.cache_key()["precision"] == "bf16"
    assert not DMMethod(ds, 2, DM_TINY, None, CPU).resident  # auto: off on the CPU


def test_device_sampler_draws_distinct_members_of_each_class():
    members = [torch.arange(0, 10), torch.arange(10, 17), torch.arange(17, 40)]
    sampler = DeviceClassSampler(members, batch=8, device=CPU)
    index = sampler.sample(torch.Generator().manual_seed(0))
    assert index.shape == (3, 7)  # the smallest class bounds the batch
    for k, m in enumerate(members):
        assert len(set(index[k].tolist())) == 7 and set(index[k].tolist()) <= set(m.tolist())
    again = DeviceClassSampler(members, batch=8, device=CPU).sample(torch.Generator().manual_seed(0))
    assert torch.equal(index, again)


def test_device_resident_dm_is_repeatable_and_learns(isolated_cache):
    ds = make_toy_dataset()
    config = dataclasses.replace(DM_LEARNS, device_resident=True, iterations=20)
    first = distill_dm(ds, 2, config, progress=False, use_cache=False)
    second = distill_dm(ds, 2, config, progress=False, use_cache=False)
    assert torch.equal(first.images, second.images)
    losses = first.provenance["loss_every_10"]
    assert torch.isfinite(first.images).all() and len(losses) == 2
    # learns: on fixed networks and real batches, the distilled images match better than their start
    start = distill_dm(ds, 2, dataclasses.replace(config, iterations=0), progress=False, use_cache=False)
    assert _fixed_dm_loss(ds, first.images) < _fixed_dm_loss(ds, start.images)
    weighted = distill_dm(ds, 2, config, UniformWeights(), progress=False, use_cache=False)
    assert torch.allclose(weighted.images, first.images, atol=1e-5)


def _fixed_dm_loss(ds, images: torch.Tensor, networks: int = 8) -> float:
    """The DM loss of ``images`` (2 per class) summed over ``networks`` seeded networks, each with its own
    fixed real batch of 8 per class: the same yardstick for any set of images."""
    from ddlib.distill.dm import dm_loss
    from ddlib.distill.synthetic import class_index_tensors, sample_class_batches
    from ddlib.models import build_convnet
    members = class_index_tensors(ds)
    train = torch.from_numpy(ds.train.images)
    total = 0.0
    for k in range(networks):
        gen = torch.Generator().manual_seed(1000 + k)
        net = build_convnet(ds.channels, ds.num_classes, ds.image_size, TINY, gen).requires_grad_(False)
        index = sample_class_batches(members, 8, gen)
        real = ds.normalize(train[index.flatten()], CPU).view(*index.shape, *train.shape[1:])
        with torch.no_grad():
            total += float(dm_loss(net, real, images.view(ds.num_classes, 2, *images.shape[1:])))
    return total


def test_device_resident_dm_resumes_from_a_checkpoint(isolated_cache):
    ds = make_toy_dataset()
    config = dataclasses.replace(DM_TINY, device_resident=True, iterations=6, checkpoint_every=3)
    uninterrupted = distill_dm(ds, 2, config, progress=False, use_cache=False)
    calls = {"n": 0}
    original = DMMethod.iteration

    def crash(self, it, syn, gens):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, it, syn, gens)
    DMMethod.iteration = crash
    try:
        with pytest.raises(KeyboardInterrupt):
            distill_dm(ds, 2, config, progress=False)
    finally:
        DMMethod.iteration = original
    assert torch.equal(distill_dm(ds, 2, config, progress=False).images, uninterrupted.images)


def test_precision_switch():
    with pytest.raises(ValueError, match="precision"):
        DMConfig(precision="fp16")
    x = torch.randn(4, 8)
    w = torch.randn(8, 8)
    with precision_context("fp32", CPU):
        assert (x @ w).dtype == torch.float32
    with precision_context("bf16", CPU):
        assert (x @ w).dtype == torch.bfloat16
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with precision_context("tf32", CPU):
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    # fp32 is strict: cuDNN's TF32 convolutions (PyTorch's default) are off while it is open
    torch.backends.cudnn.allow_tf32 = True
    try:
        with precision_context("fp32", CPU):
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        assert torch.backends.cudnn.allow_tf32  # and the switch is given back
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_bf16_dm_runs_close_to_fp32(isolated_cache):
    ds = make_toy_dataset()
    fp32 = distill_dm(ds, 2, DM_LEARNS, progress=False, use_cache=False)
    bf16 = distill_dm(ds, 2, dataclasses.replace(DM_LEARNS, precision="bf16"), progress=False, use_cache=False)
    start = distill_dm(ds, 2, dataclasses.replace(DM_LEARNS, iterations=0), progress=False, use_cache=False)
    assert bf16.images.dtype == torch.float32 and torch.isfinite(bf16.images).all()
    assert not torch.equal(bf16.images, fp32.images)  # bf16 really ran ...
    # ... and stayed close: its images differ from fp32's by under a tenth of how far fp32 moved them
    # (measured: about a twentieth)
    moved = (fp32.images - start.images).abs().mean()
    assert moved > 0
    assert (bf16.images - fp32.images).abs().mean() < 0.1 * moved


@pytest.mark.parametrize("dsa", [False, True])
def test_models_trained_at_once_equal_sequential_trainings(dsa):
    ds = make_toy_dataset()
    images, labels = torch.from_numpy(ds.train.images[:30]), torch.from_numpy(ds.train.targets[:30])
    config = TrainConfig(epochs=4, batch_size=8, model=TINY, dsa=dsa)
    seeds = [3, 4, 5]
    together = train_classifiers_batched(ds, images, labels, config, seeds, CPU)
    for seed, net in zip(seeds, together):
        alone = train_classifier(ds, images, labels, config, seed, CPU)
        for p, q in zip(alone.parameters(), net.parameters()):
            assert torch.allclose(p, q, rtol=1e-4, atol=1e-5)
        assert not net.training


def test_evaluation_chooses_batched_only_for_cross_entropy():
    ds = make_toy_dataset()
    train = TrainConfig(epochs=2, batch_size=8, model=TINY)
    assert not EvalSettings(train, 2).batched_on(CPU)          # auto: off on the CPU
    assert EvalSettings(train, 2, batched=True).batched_on(CPU)
    weighted = WeightedCrossEntropy(torch.ones(30))
    assert not EvalSettings(train, 2, objective=weighted, batched=True).batched_on(CPU)
    images, labels = torch.from_numpy(ds.train.images[:30]), torch.from_numpy(ds.train.targets[:30])
    seq = evaluate_images(ds, images, labels, EvalSettings(train, 2), CPU, progress=False)
    bat = evaluate_images(ds, images, labels, EvalSettings(train, 2, batched=True), CPU, progress=False)
    assert [a.overall for a in seq.per_model] == pytest.approx([a.overall for a in bat.per_model], abs=0.05)


def test_headline_runner_smoke(monkeypatch, isolated_cache, capsys):
    from ddlib.tools import headline
    ds = make_toy_dataset()
    monkeypatch.setattr(headline, "load_dataset", lambda name, ratio: ds)
    headline.main(["--profile", "smoke", "--device", "cpu", "--no-progress",
                   "--set", "kde_method.dm.iterations=2", "--set", "kde_method.surrogate.max_samples=60"])
    out = capsys.readouterr().out
    assert "DM + KDE/SupCon" in out and "wall time" in out and "CPU" in out
    assert "headline.csv" in out
