"""Execute one notebook with papermill and show on the terminal what it is doing.

    python -m ddlib.tools.run_notebook notebooks/01_bias_analysis.ipynb runs/x/01_bias_analysis.ipynb --cwd notebooks

``reproduce.sh`` runs every notebook through this. The terminal gets one line per code cell (its
number, its first line, the elapsed time, and the notebook's time on its last successful run with
this profile, which is the estimate; on a first run the committed run-time table's time) and the
progress bars of long steps (distillation, evaluation networks, surrogates), each labelled with its
data set, method, IPC and stage: at most every ``--interval`` seconds per bar, and its final state at
once. Every line starts with the wall-clock time. The
executed notebook is written as papermill writes it; its outputs are unchanged.

Last run times are kept in ``<cache>/notebook-times.json`` (per notebook and profile).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import nbformat

from ddlib.core import env
from ddlib.core.cache import atomic_write_json, cache_root
from ddlib.core.plots import repo_root

TIMES_FILE = "notebook-times.json"
_BAR = re.compile(r"^(?P<desc>[^\r\n]*?):\s+(?P<percent>\d+)%\|")
_CELL = re.compile(r"^Executing Cell (?P<index>\d+)")


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def last_times(path: Path | None = None) -> dict[str, float]:
    """Wall seconds of the last successful run of each ``<profile>/<notebook>``."""
    path = path or cache_root() / TIMES_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # unreadable or not UTF-8: no estimate
        return {}


def record_time(key: str, seconds: float, path: Path | None = None) -> None:
    path = path or cache_root() / TIMES_FILE
    times = last_times(path)
    times[key] = round(seconds, 1)
    atomic_write_json(path, times)


def committed_estimate(profile: str, notebook: str, root: Path | None = None) -> tuple[float, str] | None:
    """The notebook's wall seconds in the committed run-time table ``figures/<profile>/run_times.csv``
    (written by ``python -m ddlib.tools.report --run-times``) and where they come from, or None."""
    folder = (root or repo_root()) / "figures" / profile
    try:
        rows = list(csv.DictReader((folder / "run_times.csv").open()))
        provenance = json.loads((folder / "run_times.provenance.json").read_text())
    except (OSError, ValueError):
        return None
    seconds = next((float(r["seconds"]) for r in rows if r.get("notebook") == notebook and r.get("seconds")), None)
    if seconds is None:
        return None
    commit = provenance.get("run_commit") or provenance.get("git_commit") or "an unrecorded commit"
    return seconds, f"the committed {profile} run at {str(commit)[:7]}, 2 CPU cores"


def estimate_for(profile: str, notebook: str, times_path: Path | None = None,
                 root: Path | None = None) -> tuple[float, str] | None:
    """This machine's last successful run of ``notebook`` at ``profile``, else the committed run time."""
    last = last_times(times_path).get(f"{profile}/{notebook}")
    if last is not None:
        return float(last), "your last run"
    return committed_estimate(profile, notebook, root)


class TerminalProgress(logging.Handler):
    """Turns papermill's log (cell starts, cell output) into short terminal lines, each starting with the
    wall-clock time.

    Progress bars: a bar's first state is held back, an intermediate state is shown at most every
    ``interval`` seconds per bar, and its final state (100 %) at once, so a bar shorter than the interval
    prints one line, at its end, in the order bars finish."""

    def __init__(self, nb: nbformat.NotebookNode, estimate: float | None, interval: float = 10.0,
                 stream=sys.stdout, estimate_source: str | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], str] | None = None):
        super().__init__()
        self.cells = nb.cells
        self.code_total = sum(c.cell_type == "code" for c in nb.cells)
        self.estimate = estimate
        self.estimate_source = estimate_source
        self.interval = interval
        self.stream = stream
        self.clock = clock
        self.wall = wall or (lambda: time.strftime("%H:%M:%S"))
        self.start = clock()
        self.last_shown: dict[str, float] = {}  # when each bar was last shown (or first seen)
        self.finished: dict[str, str] = {}  # each bar's final state, once shown

    def elapsed(self) -> str:
        text = _clock(self.clock() - self.start)
        return f"{text} / est. {_clock(self.estimate)}" if self.estimate else text

    def _print(self, line: str) -> None:
        print(f"{self.wall()} {line}", file=self.stream, flush=True)

    def announce(self, name: str) -> None:
        """The notebook's first line: its estimate and where it comes from (or that there is none)."""
        if self.estimate:
            self._print(f"  {name}: estimate {_clock(self.estimate)} ({self.estimate_source or 'last run'})")
        else:
            self._print(f"  {name}: no run time recorded for this profile yet, so no estimate")

    def _bar(self, part: str, now: float) -> None:
        bar = _BAR.match(part)
        if not bar:
            return
        desc, state = bar["desc"].strip(), re.sub(r"\s+", " ", part)
        if int(bar["percent"]) >= 100:
            if self.finished.get(desc) != state:  # a leave=True bar repeats its final state on close
                self._print(f"    {state}")
                self.finished[desc] = state
            self.last_shown[desc] = now
            return
        self.finished.pop(desc, None)  # the same label again: a new bar
        if desc not in self.last_shown:
            self.last_shown[desc] = now  # the first state (0 %) waits: a short bar shows only its end
        elif now - self.last_shown[desc] >= self.interval:
            self._print(f"    {state}")
            self.last_shown[desc] = now

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        match = _CELL.match(message)
        if match:
            index = int(match["index"]) - 1
            cell = self.cells[index] if 0 <= index < len(self.cells) else None
            if cell is None or cell.cell_type != "code":
                return
            number = sum(c.cell_type == "code" for c in self.cells[:index + 1])
            first = next((line for line in cell.source.splitlines() if line.strip()), "")[:70]
            self._print(f"  [{self.elapsed()}] cell {number}/{self.code_total}: {first}")
            return
        now = self.clock()
        for part in re.split(r"[\r\n]+", message):
            if part.strip():
                self._bar(part.strip(), now)


def run(input_path: Path, output_path: Path, cwd: str | None, interval: float = 10.0) -> float:
    """Execute ``input_path`` into ``output_path``; return the wall seconds. Raises papermill's error."""
    import papermill

    nb = nbformat.read(input_path, as_version=4)
    profile = env.profile() or "quick"
    key = f"{profile}/{input_path.name}"
    estimate = estimate_for(profile, input_path.name)
    handler = TerminalProgress(nb, estimate[0] if estimate else None, interval,
                               estimate_source=estimate[1] if estimate else None)
    handler.announce(input_path.name)
    logger = logging.getLogger("papermill")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the handler above is the only terminal output
    start = time.monotonic()
    try:
        papermill.execute_notebook(str(input_path), str(output_path), cwd=cwd, log_output=True, progress_bar=False)
    finally:
        logger.removeHandler(handler)
    seconds = time.monotonic() - start
    record_time(key, seconds)
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ddlib.tools.run_notebook", description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--cwd", default=None, help="working directory of the kernel")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between lines of one progress bar")
    args = parser.parse_args(argv)
    env.absolutize_at_entry("python -m ddlib.tools.run_notebook")
    try:
        seconds = run(args.input, args.output, args.cwd, args.interval)
    except Exception as error:  # papermill's PapermillExecutionError names the cell; the executed copy has it
        print(f"  notebook failed: {type(error).__name__}: {str(error).strip().splitlines()[-1][:300] if str(error).strip() else ''}",
              file=sys.stderr)
        return 1
    print(f"{time.strftime('%H:%M:%S')}   [{_clock(seconds)}] done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
