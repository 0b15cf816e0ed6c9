"""The training-time de-biasing objectives (LfF, DFA, SelecMix, JTT): their maths and that they learn."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from conftest import make_toy_dataset
from ddlib.training.debiasing import (DFA, ERM, JTT, OTHER_LABEL, SAME_LABEL, LfF, SampleLossAverage, SelecMix,
                                      generalized_cross_entropy, misclassified, relative_difficulty,
                                      select_partners, swap_bias_features)
from ddlib.training.loop import as_float
from ddlib.training.objectives import TrainConfig, TrainingSetup
from ddlib.models import ConvNetConfig


def test_gce_matches_its_definition_and_gradient():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 0, 2])
    q = 0.7
    loss = generalized_cross_entropy(logits, y, q)
    p = torch.softmax(logits.detach(), 1)
    p_y = p[torch.arange(6), y]
    torch.testing.assert_close(loss.detach(), (1 - p_y ** q) / q)
    loss.sum().backward()
    # d/dz (1 − p_y^q)/q = p_y^q · (p − onehot(y)): the cross-entropy gradient scaled by p_y^q
    expected = p_y.view(-1, 1) ** q * (p - F.one_hot(y, 4).double())
    torch.testing.assert_close(logits.grad, expected)
    with pytest.raises(ValueError, match="0 < q <= 1"):
        generalized_cross_entropy(logits, y, 0.0)


def test_lff_relative_difficulty_on_a_hand_made_loss_history():
    labels = torch.tensor([0, 0, 1, 1])
    ema = SampleLossAverage(labels, num_classes=2, alpha=0.7)
    ema.update(torch.tensor([0, 1, 2, 3]), torch.tensor([1.0, 2.0, 4.0, 8.0]))  # first visit: the raw loss
    torch.testing.assert_close(ema.values, torch.tensor([1.0, 2.0, 4.0, 8.0]))
    ema.update(torch.tensor([0, 3]), torch.tensor([3.0, 0.0]))
    torch.testing.assert_close(ema.values, torch.tensor([0.7 * 1 + 0.3 * 3, 2.0, 4.0, 0.7 * 8]))
    # class maximum: class 0 → 2.0 (sample 1), class 1 → 5.6 (sample 3)
    torch.testing.assert_close(ema.normalized(torch.tensor([0, 1, 2, 3])),
                               torch.tensor([1.6 / 2.0, 1.0, 4.0 / 5.6, 1.0]))
    # a sample seen for the first time later still stores its raw loss
    late = SampleLossAverage(torch.tensor([0, 0]), 1)
    late.update(torch.tensor([0]), torch.tensor([5.0]))
    late.update(torch.tensor([1]), torch.tensor([2.0]))
    torch.testing.assert_close(late.values, torch.tensor([5.0, 2.0]))
    w = relative_difficulty(torch.tensor([1.0, 0.0, 0.5]), torch.tensor([0.0, 1.0, 0.5]))
    torch.testing.assert_close(w, torch.tensor([1.0, 0.0, 0.5]), atol=1e-7, rtol=0)


def test_dfa_swap_keeps_intrinsic_features_and_permutes_bias_features_with_their_labels():
    z_i = torch.arange(8.0).view(4, 2)
    z_b = 100 + torch.arange(12.0).view(4, 3)
    y = torch.tensor([0, 1, 2, 3])
    perm = torch.tensor([2, 0, 3, 1])
    for_i, for_b, y_swap = swap_bias_features(z_i, z_b, y, perm)
    for z in (for_i, for_b):
        torch.testing.assert_close(z[:, :2], z_i)
        torch.testing.assert_close(z[:, 2:], z_b[perm])
    assert y_swap.tolist() == [2, 0, 3, 1]
    assert y.tolist() == [0, 1, 2, 3]


def test_selecmix_picks_least_similar_same_label_and_most_similar_other_label():
    y = torch.tensor([0, 0, 0, 1, 1])
    sim = torch.tensor([[1.0, 0.9, 0.1, 0.5, 0.8],
                        [0.9, 1.0, 0.3, 0.7, 0.2],
                        [0.1, 0.3, 1.0, 0.6, 0.4],
                        [0.5, 0.7, 0.6, 1.0, 0.95],
                        [0.8, 0.2, 0.4, 0.95, 1.0]])
    assert select_partners(sim, y, SAME_LABEL).tolist() == [2, 2, 0, 4, 3]
    assert select_partners(sim, y, OTHER_LABEL).tolist() == [4, 3, 3, 1, 0]
    # no candidate: the sample is its own partner
    assert select_partners(torch.ones(2, 2), torch.tensor([0, 1]), SAME_LABEL).tolist() == [0, 1]
    with pytest.raises(ValueError, match="pairing mode"):
        select_partners(sim, y, "random")


def _setup(dataset, epochs: int = 3, batch: int = 32) -> TrainingSetup:
    config = TrainConfig(epochs=epochs, batch_size=batch, dsa=False,
                         model=ConvNetConfig(depth=2, width=8, norm="instancenorm", pooling="avgpooling"))
    return TrainingSetup(dataset, config, len(dataset.train), seed=0, device=torch.device("cpu"))


def test_jtt_error_set_is_the_misclassified_indices():
    ds = make_toy_dataset(n_per_class=20)
    setup = _setup(ds, epochs=3)
    labels = torch.from_numpy(ds.train.targets)
    run = JTT(model="mlp", identification_epochs=1, upweight=5).start(setup, labels)
    x_all = as_float(ds, torch.from_numpy(ds.train.images), setup.device)
    expected = []
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))
    for start in range(0, len(order), 16):
        index = order[start:start + 16]
        net = copy.deepcopy(run.phase1.net).eval()  # the prediction before this batch's update
        with torch.no_grad():
            expected.append(index[net(x_all[index]).argmax(1) != labels[index]])
        run.step(x_all[index], labels[index], index)
    run.end_epoch()
    assert sorted(run.error_set.tolist()) == sorted(torch.cat(expected).tolist())
    assert run.final is not None and run.model() is run.final.net
    w = run.final.sample_weights
    assert set(w[run.error_set].tolist()) <= {6.0} and (w == 1).sum() == len(labels) - len(run.error_set)
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    assert misclassified(logits, torch.tensor([0, 0, 1]), torch.tensor([7, 8, 9])).tolist() == [8, 9]


@pytest.mark.parametrize("objective", [ERM(model="mlp", adam_lr=1e-3), LfF(model="mlp", adam_lr=1e-3),
                                       LfF(model="convnet"), DFA(model="mlp", adam_lr=1e-3, swap_start=0.0),
                                       DFA(model="convnet", swap_start=0.0),
                                       SelecMix(model="mlp", adam_lr=1e-3),
                                       SelecMix(model="convnet", a=0.1, b=1.0),
                                       JTT(model="mlp", adam_lr=1e-3, identification_epochs=2)],
                         ids=lambda o: f"{type(o).__name__}-{o.model}")
def test_every_objective_lowers_its_loss_on_a_toy_set(objective):
    ds = make_toy_dataset(n_per_class=12, size=12)  # small images: the ConvNet variants stay fast
    setup = _setup(ds, epochs=20, batch=36)
    labels = torch.from_numpy(ds.train.targets)
    x = as_float(ds, torch.from_numpy(ds.train.images), setup.device)
    index = torch.arange(len(labels))
    run = objective.start(setup, labels)
    if isinstance(objective, JTT):  # the final network starts after identification; judge it
        for _ in range(2):
            run.step(x, labels, index)
            run.end_epoch()
    losses = []
    for _ in range(10):
        losses.append(float(run.step(x, labels, index)))
        run.end_epoch()
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses
    model = run.model().eval()
    assert model(x[:4]).shape == (4, ds.num_classes)


def test_objectives_are_hashable_configs_and_reject_bad_settings():
    assert hash(LfF()) == hash(LfF()) and LfF().cache_config() != LfF(q=0.5).cache_config()
    assert {DFA(), SelecMix(), JTT(), ERM()}
    with pytest.raises(ValueError, match="unknown model"):
        LfF(model="resnet")
    with pytest.raises(ValueError, match="identification_epochs"):
        JTT(identification_epochs=5).start(_setup(make_toy_dataset(4), epochs=3), torch.zeros(12, dtype=torch.long))


def _with_valid(ds, seed: int = 1):
    """The toy data set with a validation split (another draw of the toy test protocol)."""
    import dataclasses
    return dataclasses.replace(ds, valid=make_toy_dataset(n_per_class=len(ds.test) // ds.num_classes * 4,
                                                          num_classes=ds.num_classes, size=ds.train.images.shape[-1],
                                                          seed=seed).test)


def test_conflicting_share_counts_untied_bias():
    import numpy as np
    from ddlib.experiments.training_time_debiasing import aligned_bias_of_classes, estimated_conflicting_share
    ds = make_toy_dataset(n_per_class=20)
    assert aligned_bias_of_classes(ds.train, 3).tolist() == [0, 1, 2]

    class Fixed(torch.nn.Module):  # predicts bias attribute 0 for every image
        def forward(self, x):
            return torch.tensor([[1.0, 0.0, 0.0]]).expand(len(x), 3)
    images = torch.from_numpy(ds.train.images[:6])
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    share = estimated_conflicting_share(ds, Fixed(), images, labels, torch.device("cpu"))
    assert share == pytest.approx(4 / 6)
    assert np.isfinite(share)


def test_without_a_validation_split_notebook_04_says_so():
    from ddlib.experiments.training_time_debiasing import compare_on_synthetic, select_objective, validation_split
    ds = make_toy_dataset(n_per_class=4, with_valid=False)
    assert ds.valid is None
    with pytest.raises(ValueError, match="no validation split"):
        validation_split(ds)
    with pytest.raises(ValueError, match="no validation split"):
        select_objective(ds, torch.from_numpy(ds.train.images), torch.from_numpy(ds.train.targets), [ERM()],
                         None, torch.device("cpu"))
    with pytest.raises(ValueError, match="no validation split"):  # before any distillation
        compare_on_synthetic(ds, 1, None, None, ("ERM",), None, 1, 1, torch.device("cpu"), 0.05)
    assert validation_split(_with_valid(ds)) is not None


def test_versus_erm_and_interval_columns_come_from_core_stats():
    from ddlib.core.stats import summarise
    from ddlib.experiments.training_time_debiasing import summary_columns, versus_erm
    row = summary_columns({"acc": [80.0, 82.0, 84.0]})
    s = summarise([80.0, 82.0, 84.0])
    assert row["acc"] == pytest.approx(82.0) and row["acc std"] == pytest.approx(2.0)
    assert row["acc ±95%"] == pytest.approx(s.half_width) and (row["acc low"], row["acc high"]) == (s.low, s.high)
    assert versus_erm([80.0, 81.0, 82.0], [20.0, 21.0, 22.0])["verdict vs ERM"] == "better than ERM"
    assert versus_erm([20.0, 21.0, 22.0], [80.0, 81.0, 82.0])["verdict vs ERM"] == "worse than ERM"
    assert versus_erm([50.0, 60.0, 70.0], [55.0, 60.0, 65.0])["verdict vs ERM"] == "within noise"
    one = versus_erm([90.0], [10.0])  # one seed: no interval, so no verdict
    assert one["verdict vs ERM"] == "within noise" and one["vs ERM"] == pytest.approx(80.0)


def test_synthetic_comparison_selects_on_valid_tests_once_per_model_and_summarises_over_seeds(monkeypatch, tmp_path):
    import ddlib.experiments.training_time_debiasing as ttd
    from ddlib.distill.dm import DMConfig
    from ddlib.training import evaluation
    from ddlib.training.evaluation import EvalSettings
    from ddlib.weighting.baselines import GroupBalancedWeights
    monkeypatch.setenv("DDLIB_CACHE", str(tmp_path / "cache"))
    ds = _with_valid(make_toy_dataset(n_per_class=12, size=12))
    model = ConvNetConfig(depth=2, width=8, norm="instancenorm", pooling="avgpooling")
    dm = DMConfig(iterations=2, batch_real=8, model=model, checkpoint_every=0)
    settings = EvalSettings(TrainConfig(epochs=2, batch_size=64, model=model), n_models=2)
    calls, real = [], evaluation.evaluate_images

    def recording(dataset, images, labels, s, device, progress=True, desc="evaluate", split="test"):
        calls.append((getattr(s, "split", split), type(s.objective).__name__, s.n_models, len(images)))
        return real(dataset, images, labels, s, device, progress, desc, split=split)
    monkeypatch.setattr(evaluation, "evaluate_images", recording)
    monkeypatch.setattr(ttd, "evaluate_images", recording)
    seen_seeds = []
    real_distil = ttd.distil_sets

    def distil_sets(*args, **kwargs):
        sets = real_distil(*args, **kwargs)
        seen_seeds.extend(sets)
        return sets
    monkeypatch.setattr(ttd, "distil_sets", distil_sets)
    out = ttd.compare_on_synthetic(ds, 1, dm, GroupBalancedWeights(ds.train.bias, "toy"), ("ERM", "LfF"), settings,
                                   grid_size=2, selection_models=1, device=torch.device("cpu"), conflict_ratio=0.05,
                                   seeds=(0, 1), progress=False)
    assert seen_seeds == [0, 1]
    assert not torch.equal(out.synthetic[0]["DM"].images, out.synthetic[1]["DM"].images)  # only the seed differs
    valid_calls = [c for c in calls if c[0] == "valid"]
    test_calls = [c for c in calls if c[0] == "test"]
    assert len(valid_calls) == 3 and all(c[2] == 1 for c in valid_calls)  # ERM + 2 LfF candidates, 1 network each
    # DM: ERM, LfF; DM + KDE: ERM, LfF (the best method) — each on both seeds, 2 networks each
    assert len(test_calls) == 4 * 2 and all(c[2] == 2 for c in test_calls)
    t = out.table
    assert list(t["synthetic set"]) == ["DM", "DM", "DM + KDE", "DM + KDE"]
    assert (t["seeds"] == 2).all() and (t["n_models"] == 2).all()
    assert set(t["verdict vs ERM"]) <= {"—", "better than ERM", "worse than ERM", "within noise"}
    assert t.loc[t["training"] == "ERM", "verdict vs ERM"].eq("—").all()
    kde = t[t["synthetic set"] == "DM + KDE"]
    assert set(kde["verdict vs DM ERM"]) <= {"better than DM with ERM", "worse than DM with ERM", "within noise"}
    assert t.loc[t["synthetic set"] == "DM", "verdict vs DM ERM"].eq("—").all()
    per = out.per_seed
    assert len(per) == 8 and sorted(per["seed"].unique()) == [0, 1]
    for _, row in t.iterrows():
        v = per[(per["synthetic set"] == row["synthetic set"]) & (per["training"] == row["training"])]["acc"]
        assert row["acc"] == pytest.approx(v.mean()) and row["acc std"] == pytest.approx(v.std(ddof=1))
    sel = out.selection
    assert sel["chosen"].sum() == 2 and (sel["valid images"] == len(ds.valid)).all()
    assert (sel["selected on"] == "DM set, seed 0").all()
    assert "validation split" in ttd.selection_reading(sel) and "IPC 1" in ttd.synthetic_reading(t)
    # a rerun reads every test-split evaluation from the cache and trains only the selection networks
    calls.clear()
    again = ttd.compare_on_synthetic(ds, 1, dm, GroupBalancedWeights(ds.train.bias, "toy"), ("ERM", "LfF"), settings,
                                     grid_size=2, selection_models=1, device=torch.device("cpu"), conflict_ratio=0.05,
                                     seeds=(0, 1), progress=False)
    assert [c[0] for c in calls] == ["valid"] * 3
    pd_equal = again.table.drop(columns=["paper"]).equals(t.drop(columns=["paper"]))
    assert pd_equal


def test_debiasing_profiles_name_seeds_methods_and_networks():
    from ddlib.experiments.training_time_debiasing import METHODS
    from ddlib.profiles import get_profile
    for name, seeds in (("smoke", (0,)), ("quick", (0, 1, 2)), ("paper", (0, 1, 2, 3, 4))):
        p = get_profile(name)
        d = p.debiasing
        assert p.seeds == seeds and not hasattr(d, "holdout") and not hasattr(d, "seeds")
        assert set(d.methods_on_synthetic) <= set(METHODS) and "ERM" in d.methods_on_synthetic
        assert d.evaluation(p.evaluation).n_models == (d.eval_models or p.evaluation.n_models)
    assert get_profile("quick", overrides={"seeds": [0, 1]}).seeds == (0, 1)


def test_erm_on_the_convnet_is_the_evaluation_protocol_and_shares_its_networks():
    """ERM (ConvNet, the protocol's SGD) trains the very networks of the evaluation protocol, so notebook 04
    runs it as the protocol (objective None) with the grid runner's per-replicate seeds; other methods keep
    their objective."""
    import dataclasses

    from ddlib.core.seeding import derive_seed
    from ddlib.experiments.training_time_debiasing import replicate_settings
    from ddlib.training.evaluation import EvalSettings
    from ddlib.training.loop import train_classifier
    ds = make_toy_dataset(n_per_class=12, num_classes=3, size=16)
    images, labels = torch.from_numpy(ds.train.images), torch.from_numpy(ds.train.targets)
    config = TrainConfig(epochs=2, batch_size=8, model=ConvNetConfig(depth=2, width=8))
    erm = train_classifier(ds, images, labels, config, 3, torch.device("cpu"), objective=ERM())
    protocol = train_classifier(ds, images, labels, config, 3, torch.device("cpu"))
    for a, b in zip(erm.parameters(), protocol.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    settings = EvalSettings(config, n_models=2)
    shared = replicate_settings(settings, ERM(), 1)
    assert shared == dataclasses.replace(settings, objective=None, seed=derive_seed(settings.seed, "replicate", 1))
    assert replicate_settings(settings, ERM("convnet", 1e-3), 1).objective == ERM("convnet", 1e-3)
    assert replicate_settings(settings, LfF(), 2).objective == LfF()
    assert replicate_settings(settings, LfF(), 2).seed != replicate_settings(settings, LfF(), 1).seed


def test_the_real_share_check_uses_training_images_the_bias_classifier_did_not_see():
    import numpy as np

    from ddlib.experiments.training_time_debiasing import real_share_row
    from ddlib.training.evaluation import full_data_index
    seen = full_data_index(100, 30)
    assert len(seen) == 30 and len(set(seen)) == 30
    ds = make_toy_dataset(n_per_class=20, num_classes=3, size=16)
    n = len(ds.train)

    class Constant(torch.nn.Module):  # predicts bias attribute 0 for everything
        def forward(self, x):
            out = torch.zeros(len(x), ds.num_classes)
            out[:, 0] = 1.0
            return out
    row = real_share_row(ds, Constant(), n // 2, torch.device("cpu"))
    assert "held out" in row["set"]
    held_out = np.setdiff1d(np.arange(n), full_data_index(n, n // 2))
    assert row["true conflicting %"] == pytest.approx(100 * (~ds.train.aligned[held_out]).mean())
    assert "seen by" in real_share_row(ds, Constant(), None, torch.device("cpu"))["set"]
