"""The terminal lines of ddlib.tools.run_notebook (what reproduce.sh shows while a notebook runs)."""

import io
import logging

import nbformat

from ddlib.tools.run_notebook import TerminalProgress, last_times, record_time


def _log(handler, message):
    handler.emit(logging.LogRecord("papermill", logging.INFO, __file__, 0, message, None, None))


def test_cells_and_throttled_progress_bars_reach_the_terminal():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), nbformat.v4.new_code_cell("\nx = distill()"),
                nbformat.v4.new_code_cell("y = 1")]
    out = io.StringIO()
    handler = TerminalProgress(nb, estimate=125.0, interval=1000.0, stream=out)
    _log(handler, "Executing Cell 1---------")   # markdown: no line
    _log(handler, "Executing Cell 2---------")
    _log(handler, "DM ipc=1:   0%|          | 0/5 [00:00<?, ?it/s]")
    _log(handler, "DM ipc=1:  40%|####      | 2/5 [00:01<00:01, 2.0it/s]\rDM ipc=1:  80%|########  | 4/5")
    _log(handler, "plain output")
    _log(handler, "Executing Cell 3---------")
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("/ last run 02:05] cell 1/2: x = distill()")
    assert lines[1].strip().startswith("DM ipc=1: 0%")   # first state at once
    assert lines[2].strip().startswith("DM ipc=1: 80%")  # the latest state when the cell ends
    assert lines[3].endswith("cell 2/2: y = 1")
    assert len(lines) == 4


def test_run_times_are_recorded_per_profile_and_notebook(tmp_path):
    path = tmp_path / "times.json"
    assert last_times(path) == {}
    record_time("smoke/00_a.ipynb", 12.34, path)
    assert last_times(path) == {"smoke/00_a.ipynb": 12.3}
