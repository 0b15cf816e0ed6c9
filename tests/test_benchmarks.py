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
