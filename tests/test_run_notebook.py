"""The terminal lines of ddlib.tools.run_notebook (what reproduce.sh shows while a notebook runs)."""

import io
import json
import logging

import nbformat

from ddlib.tools.run_notebook import TerminalProgress, committed_estimate, estimate_for, last_times, record_time


def _log(handler, message):
    handler.emit(logging.LogRecord("papermill", logging.INFO, __file__, 0, message, None, None))


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _handler(interval=10.0, estimate=125.0):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), nbformat.v4.new_code_cell("\nx = distill()"),
                nbformat.v4.new_code_cell("y = 1")]
    out, clock = io.StringIO(), _Clock()
    handler = TerminalProgress(nb, estimate=estimate, interval=interval, stream=out, clock=clock,
                               wall=lambda: f"00:00:{int(clock.now):02d}", estimate_source="your last run")
    return handler, out, clock


def test_cells_and_bars_reach_the_terminal_throttled_with_their_final_state_at_once():
    handler, out, clock = _handler()
    handler.announce("01_x.ipynb")
    _log(handler, "Executing Cell 1---------")   # markdown: no line
    _log(handler, "Executing Cell 2---------")
    _log(handler, "cm 5% · DM ipc=1 seed=0 · distil:   0%|          | 0/5 [00:00<?, ?it/s]")  # held back
    clock.now = 4
    _log(handler, "cm 5% · DM ipc=1 seed=0 · distil:  40%|####      | 2/5 [00:01<00:01, 2.0it/s]")  # < interval
    clock.now = 12
    _log(handler, "cm 5% · DM ipc=1 seed=0 · distil:  60%|######    | 3/5\rcm 5% · DM ipc=1 seed=0 · distil:  80%|###")
    _log(handler, "cm 5% · evaluate [1/3]:   0%|    | 0/4\rcm 5% · evaluate [1/3]: 100%|####| 4/4")  # short bar
    clock.now = 13
    _log(handler, "cm 5% · DM ipc=1 seed=0 · distil: 100%|##########| 5/5 [00:03<00:00]")
    _log(handler, "cm 5% · DM ipc=1 seed=0 · distil: 100%|##########| 5/5 [00:03<00:00]")  # leave=True repeats
    _log(handler, "plain output")
    _log(handler, "Executing Cell 3---------")
    lines = out.getvalue().splitlines()
    assert lines == [
        "00:00:00   01_x.ipynb: estimate 02:05 (your last run)",
        "00:00:00   [00:00 / est. 02:05] cell 1/2: x = distill()",
        "00:00:12     cm 5% · DM ipc=1 seed=0 · distil: 60%|###### | 3/5",  # first state after the interval
        "00:00:12     cm 5% · evaluate [1/3]: 100%|####| 4/4",  # only its end
        "00:00:13     cm 5% · DM ipc=1 seed=0 · distil: 100%|##########| 5/5 [00:03<00:00]",
        "00:00:13   [00:13 / est. 02:05] cell 2/2: y = 1"]


def test_without_a_recorded_time_the_first_line_says_there_is_no_estimate():
    handler, out, _ = _handler(estimate=None)
    handler.announce("01_x.ipynb")
    assert out.getvalue() == "00:00:00   01_x.ipynb: no run time recorded for this profile yet, so no estimate\n"


def test_run_times_are_recorded_per_profile_and_notebook(tmp_path):
    path = tmp_path / "times.json"
    assert last_times(path) == {}
    record_time("smoke/00_a.ipynb", 12.34, path)
    assert last_times(path) == {"smoke/00_a.ipynb": 12.3}


def test_a_first_run_takes_its_estimate_from_the_committed_run_time_table(tmp_path):
    folder = tmp_path / "figures" / "quick"
    folder.mkdir(parents=True)
    (folder / "run_times.csv").write_text("notebook,seconds,status,minutes\n01_x.ipynb,944,ok,15.7\n"
                                          "all notebooks,944,ok,15.7\n")
    (folder / "run_times.provenance.json").write_text(json.dumps({"run_commit": "60ab946abcdef"}))
    times = tmp_path / "times.json"
    assert committed_estimate("quick", "01_x.ipynb", tmp_path) == (944.0, "the committed quick run at 60ab946, 2 CPU cores")
    assert committed_estimate("quick", "02_y.ipynb", tmp_path) is None
    assert committed_estimate("paper", "01_x.ipynb", tmp_path) is None  # no table for that profile
    assert estimate_for("quick", "01_x.ipynb", times, tmp_path)[0] == 944.0
    record_time("quick/01_x.ipynb", 900.0, times)  # this machine's own run wins once there is one
    assert estimate_for("quick", "01_x.ipynb", times, tmp_path) == (900.0, "your last run")


def test_the_committed_table_gives_every_quick_notebook_an_estimate():
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    for notebook in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert committed_estimate("quick", notebook.name) is not None, notebook.name
