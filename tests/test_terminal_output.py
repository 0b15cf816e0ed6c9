"""What reproduce.sh's terminal shows of a real run: notebook 01 in the smoke profile from an empty
cache, through ddlib.tools.run_notebook. Every bar names its data set, method, IPC and stage, every bar
ends at 100 %, every line starts with the wall-clock time, in order."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BAR = re.compile(r"^(?P<time>\d\d:\d\d:\d\d) +(?P<desc>.+?): +(?P<percent>\d+)%\|")
TIME = re.compile(r"^\d\d:\d\d:\d\d ")
DATASETS = ("colored_mnist 5%", "bg_fmnist 5%", "corrupted_cifar10 5%")


@pytest.fixture(scope="module")
def terminal(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("terminal")
    env = {**os.environ, "DDLIB_PROFILE": "smoke", "DDLIB_CACHE": str(folder / "cache"),
           "DDLIB_FIGURES": str(folder / "figures"), "DDLIB_PROGRESS_INTERVAL": "1", "MPLBACKEND": "Agg"}
    run = subprocess.run([sys.executable, "-m", "ddlib.tools.run_notebook", "notebooks/01_bias_analysis.ipynb",
                          str(folder / "out.ipynb"), "--cwd", "notebooks", "--interval", "1"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout.splitlines()


@pytest.mark.data
@pytest.mark.slow
def test_every_line_carries_the_wall_clock_time_in_order(terminal):
    assert terminal[0].endswith("01_bias_analysis.ipynb: no run time recorded for this profile yet, so no estimate")
    assert all(TIME.match(line) for line in terminal), [line for line in terminal if not TIME.match(line)]
    times = [line[:8] for line in terminal]
    assert times == sorted(times) or "00:00:00" in times  # in order (a run across midnight aside)
    assert terminal[-1].endswith("done")


@pytest.mark.data
@pytest.mark.slow
def test_every_bar_is_labelled_and_ends_at_100_percent(terminal):
    bars = [m for m in map(BAR.match, terminal) if m]
    for bar in bars:
        assert bar["desc"].startswith(DATASETS), bar.group(0)
        assert " · " in bar["desc"], bar.group(0)
    labels = {b["desc"] for b in bars}
    ran = {d for b in labels for d in DATASETS if b.startswith(d)}  # those whose data this machine has
    assert "colored_mnist 5%" in ran
    if os.environ.get("DDLIB_REQUIRE_DATA") == "1":
        assert ran == set(DATASETS)
    unfinished = labels - {b["desc"] for b in bars if b["percent"] == "100"}
    assert not unfinished, unfinished
    for method in ("DM ipc=1 seed=0 · distil", "DM ipc=1 seed=0 · evaluate [1/1]", "full data [1/1]"):
        assert {f"{d} · {method}" for d in ran} <= labels, method
