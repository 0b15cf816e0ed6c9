"""Execute one notebook with papermill and show on the terminal what it is doing.

    python -m ddlib.tools.run_notebook notebooks/01_bias_analysis.ipynb runs/x/01_bias_analysis.ipynb --cwd notebooks

``reproduce.sh`` runs every notebook through this. The terminal gets one line per code cell (its
number, its first line, the elapsed time, and the notebook's time on its last successful run with
this profile, which is the estimate) and the progress bars of long steps (distillation iterations,
evaluation networks) at most every ``--interval`` seconds per bar, plus their final state. The
executed notebook is written as papermill writes it; its outputs are unchanged.

Last run times are kept in ``<cache>/notebook-times.json`` (per notebook and profile).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import nbformat

from ddlib.core import env
from ddlib.core.cache import atomic_write_json, cache_root

TIMES_FILE = "notebook-times.json"
_BAR = re.compile(r"^(?P<desc>[^\r\n]*?):\s+\d+%\|")
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


class TerminalProgress(logging.Handler):
    """Turns papermill's log (cell starts, cell output) into short terminal lines."""

    def __init__(self, nb: nbformat.NotebookNode, estimate: float | None, interval: float = 10.0,
                 stream=sys.stdout):
        super().__init__()
        self.cells = nb.cells
        self.code_total = sum(c.cell_type == "code" for c in nb.cells)
        self.estimate = estimate
        self.interval = interval
        self.stream = stream
        self.start = time.monotonic()
        self.last_shown: dict[str, float] = {}
        self.pending: dict[str, str] = {}  # latest unshown state of each bar

    def elapsed(self) -> str:
        text = _clock(time.monotonic() - self.start)
        return f"{text} / last run {_clock(self.estimate)}" if self.estimate else text

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def flush_bars(self) -> None:
        for state in self.pending.values():
            self._print(f"    {state}")
        self.pending.clear()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        match = _CELL.match(message)
        if match:
            self.flush_bars()
            index = int(match["index"]) - 1
            cell = self.cells[index] if 0 <= index < len(self.cells) else None
            if cell is None or cell.cell_type != "code":
                return
            number = sum(c.cell_type == "code" for c in self.cells[:index + 1])
            first = next((line for line in cell.source.splitlines() if line.strip()), "")[:70]
            self._print(f"  [{self.elapsed()}] cell {number}/{self.code_total}: {first}")
            return
        now = time.monotonic()
        for part in re.split(r"[\r\n]+", message):
            bar = _BAR.match(part.strip())
            if not bar:
                continue
            desc = bar["desc"].strip()
            state = re.sub(r"\s+", " ", part.strip())
            if now - self.last_shown.get(desc, -1e9) >= self.interval:
                self._print(f"    {state}")
                self.last_shown[desc] = now
                self.pending.pop(desc, None)
            else:
                self.pending[desc] = state


def run(input_path: Path, output_path: Path, cwd: str | None, interval: float = 10.0) -> float:
    """Execute ``input_path`` into ``output_path``; return the wall seconds. Raises papermill's error."""
    import papermill

    nb = nbformat.read(input_path, as_version=4)
    profile = env.profile() or "quick"
    key = f"{profile}/{input_path.name}"
    handler = TerminalProgress(nb, last_times().get(key), interval)
    logger = logging.getLogger("papermill")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the handler above is the only terminal output
    start = time.monotonic()
    try:
        papermill.execute_notebook(str(input_path), str(output_path), cwd=cwd, log_output=True, progress_bar=False)
    finally:
        handler.flush_bars()
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
    print(f"  [{_clock(seconds)}] done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
