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
