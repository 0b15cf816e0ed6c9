"""The benchmark commands run and report what they claim (figures printed, never asserted)."""

from __future__ import annotations

import torch

from ddlib.tools import benchmark_dm


def test_layers_benchmark_times_every_block_in_every_layout(capsys):
    rows = benchmark_dm._time_layers(width=4, batch=2, repeats=1)
    assert len(rows) == 3 * len(benchmark_dm.LAYOUTS)
    assert {r["layout"] for r in rows} == set(benchmark_dm.LAYOUTS)
    assert all(r["forward_ms"] > 0 and r["forward_backward_ms"] > 0 for r in rows)
    threads = torch.get_num_threads()
    benchmark_dm.main(["layers", "--width", "4", "--batch", "2", "--repeats", "1", "--threads", "1"])
    out = capsys.readouterr().out
    assert "3→4 at 28×28" in out and "channels-last" in out and "(1 threads)" in out
    # later tests compare bit patterns that depend on the thread count: the benchmark gives it back
    assert torch.get_num_threads() == threads


def test_eval_benchmark_times_the_reference_without_the_cpu_path_and_puts_it_back(monkeypatch):
    import ddlib.datasets
    from conftest import make_toy_dataset
    from ddlib.models import ConvNet

    monkeypatch.setattr(ddlib.datasets, "load_dataset", lambda name, ratio: make_toy_dataset())
    embed = ConvNet.embed
    seen = []
    monkeypatch.setattr(benchmark_dm, "_reference_embed",
                        lambda net, x: seen.append(len(x)) or net.features(x).flatten(1))
    for variant in ("sequential", "reference"):
        row = benchmark_dm._time_evaluation("toy", "smoke", 2, 1, variant, "cpu")
        assert row["variant"] == variant and row["ms_per_epoch"] > 0 and row["predict_ms"] > 0
        assert row["test_images"] > 0
    assert seen  # the reference variant ran its own forward pass ...
    assert ConvNet.embed is embed  # ... and the ConvNet's own one is back


def test_quick_run_estimate_scales_dm_and_evaluation_seconds_and_keeps_the_rest():
    import pandas as pd
    from ddlib.tools.profile_run import Build, profile_table

    builds = [Build("synthetic/dm", "synthetic/dm", 0.0, 100.0, 1),
              Build("evaluations/synthetic", "evaluations/synthetic (DM)", 100.0, 150.0, 1),
              Build("evaluations/synthetic", "evaluations/synthetic (MTT)", 150.0, 160.0, 1),
              Build("synthetic/mtt", "synthetic/mtt", 160.0, 200.0, 1)]
    table = benchmark_dm.quick_run_estimate(profile_table(builds, total_seconds=300.0), dm_ratio=2.0,
                                            eval_ratio=1.5)
    by = table.set_index("part")
    # DM 100 s × 2; evaluations 60 s × 1.5; the rest (MTT 40 s + 100 s outside any artifact) as measured
    assert by.loc["DM distillation", "reference (s, estimate)"] == 200.0
    assert by.loc["synthetic-set evaluation", "ours (s)"] == 60.0
    assert by.loc["synthetic-set evaluation", "reference (s, estimate)"] == 90.0
    assert by.loc["everything else", "ours (s)"] == 140.0
    assert by.loc["total", "ours (s)"] == 300.0 and by.loc["total", "reference (s, estimate)"] == 430.0
    assert isinstance(table, pd.DataFrame)


def test_quick_run_needs_the_run_times(tmp_path):
    import pytest
    with pytest.raises(SystemExit, match="--run-times"):
        benchmark_dm.main(["quick-run", "--cache", str(tmp_path)])


def test_rounds_are_summarised_by_their_median():
    rounds = [{"variant": "ours", "ms_per_iteration": 10.0, "peak_memory_mb": 5.0, "threads": 2},
              {"variant": "ours", "ms_per_iteration": 30.0, "peak_memory_mb": 7.0, "threads": 2},
              {"variant": "ours", "ms_per_iteration": 12.0, "peak_memory_mb": 6.0, "threads": 2}]
    row = benchmark_dm.median_row(rounds)
    assert row == {"variant": "ours", "ms_per_iteration": 12.0, "peak_memory_mb": 6.0, "threads": 2}


def test_rounds_must_be_positive():
    import pytest
    with pytest.raises(SystemExit):
        benchmark_dm.main(["dm", "--rounds", "0"])
