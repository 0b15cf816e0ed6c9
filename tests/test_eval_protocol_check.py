"""The diagnostic tool ddlib.tools.eval_protocol_check: its rows switch exactly one difference each."""

from __future__ import annotations

import pytest
import torch

from ddlib.augment import DSA
from ddlib.models import ConvNetConfig
from ddlib.tools import eval_protocol_check as tool
from ddlib.training.objectives import CrossEntropy, TrainConfig, TrainingSetup
from conftest import make_toy_dataset


def test_reference_schedule_drops_the_lr_after_epoch_half_plus_one_with_a_fresh_optimiser():
    ds = make_toy_dataset(n_per_class=4, size=8)
    config = TrainConfig(epochs=11, model=ConvNetConfig(depth=1, width=4))  # nominal 10 epochs + 1
    run = tool.ReferenceScheduleCE(10).start(TrainingSetup(ds, config, 12, 0, torch.device("cpu")),
                                             torch.zeros(12, dtype=torch.long))
    first = run.optimizer
    lrs = []
    for _ in range(11):
        lrs.append(run.optimizer.param_groups[0]["lr"])
        run.end_epoch()
    assert lrs == [0.01] * 7 + [pytest.approx(0.001)] * 4  # epochs 0..6 (= 10 // 2 + 1) at 0.01
    assert run.optimizer is not first and run.optimizer.param_groups[0]["momentum"] == 0.9


@pytest.mark.parametrize("name, flip, schedule, corners", [
    ("ours", False, False, False), ("flip", True, False, False), ("schedule", False, True, False),
    ("corners", False, False, True), ("reference", True, True, True)])
def test_each_row_switches_its_differences_only(name, flip, schedule, corners):
    ds = make_toy_dataset(n_per_class=4, size=8)
    train = TrainConfig(epochs=20)
    row_ds, settings, dsa_class = tool.variant_settings(name, ds, train, 3, 0)
    assert ("flip" in row_ds.dsa_strategy.split("_")) == flip
    assert settings.train.epochs == (21 if schedule else 20)
    assert isinstance(settings.objective, tool.ReferenceScheduleCE if schedule else CrossEntropy)
    assert (dsa_class is tool.DefaultCornersDSA) == corners and issubclass(dsa_class, DSA)


def test_align_corners_does_not_change_scale_or_rotate_of_square_images():
    # a linear map about the image centre lands on the same pixel positions under both conventions
    # (for H = W): the "corners" row is a control, equal to "ours" up to float rounding
    x = torch.rand(2, 3, 8, 8)
    t = torch.tensor(0.2)
    for theta in (torch.tensor([[1.1, 0, 0], [0, 0.9, 0]]),
                  torch.stack([torch.stack([t.cos(), -t.sin(), t * 0]), torch.stack([t.sin(), t.cos(), t * 0])])):
        theta = theta.expand(2, 2, 3)
        assert torch.allclose(tool.DefaultCornersDSA._affine(x, theta), DSA._affine(x, theta), atol=1e-5)


def test_the_cli_runs_end_to_end_on_a_toy_set(monkeypatch, capsys):
    ds = make_toy_dataset(n_per_class=6, size=8)
    monkeypatch.setattr(tool, "load_dataset", lambda *a, **k: ds)
    tool.main(["--ipc", "2", "--width", "4", "--epochs", "2", "--models", "2", "--variants", "ours,reference"])
    out = capsys.readouterr().out
    assert "| ours |" in out and "| reference |" in out
    assert tool.loop_module.DSA is DSA  # the row's patch is undone
