"""The benchmark commands run and report what they claim (figures printed, never asserted)."""

from __future__ import annotations

from ddlib.tools import benchmark_dm


def test_layers_benchmark_times_every_block_in_every_layout(capsys):
    rows = benchmark_dm._time_layers(width=4, batch=2, repeats=1)
    assert len(rows) == 3 * len(benchmark_dm.LAYOUTS)
    assert {r["layout"] for r in rows} == set(benchmark_dm.LAYOUTS)
    assert all(r["forward_ms"] > 0 and r["forward_backward_ms"] > 0 for r in rows)
    benchmark_dm.main(["layers", "--width", "4", "--batch", "2", "--repeats", "1", "--threads", "1"])
    out = capsys.readouterr().out
    assert "3→4 at 28×28" in out and "channels-last" in out
