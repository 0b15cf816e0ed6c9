"""reproduce.sh: option parsing, Ctrl-C and SIGKILL handling (issue 14).

No virtual environment is created and no notebook runs: ``--no-install`` makes the script use the
``python3`` on PATH, and a stand-in ``python3`` placed first on PATH plays papermill — it starts a
"kernel" in its own session (as jupyter does, so Ctrl-C does not reach it) and then waits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "reproduce.sh"

FAKE_PYTHON = f"""#!{sys.executable}
import os, subprocess, sys, time
if len(sys.argv) > 1 and sys.argv[1] == "-c":
    sys.exit(0)  # the script's version probe
kernel = subprocess.Popen(["sleep", "300"], start_new_session=True)
folder = os.environ["FAKE_PIDS"]
open(os.path.join(folder, "kernel.tmp"), "w").write(str(kernel.pid))
open(os.path.join(folder, "papermill"), "w").write(str(os.getpid()))
os.replace(os.path.join(folder, "kernel.tmp"), os.path.join(folder, "kernel"))
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes (its parent has not reaped it yet)
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _wait_for(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.mark.parametrize("args", [["--profile"], ["--only"], ["--run-dir"], ["--profile", "--tests"],
                                  ["--only="], ["--run-dir="]])
def test_an_option_without_its_value_is_an_error(args):
    start = time.monotonic()
    proc = subprocess.run(["bash", str(SCRIPT), "--no-install", *args], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 2
    assert "needs a value" in proc.stderr
    assert time.monotonic() - start < 5  # before the fix: an endless loop at 100 % CPU


def _start_fake_run(tmp_path):
    bin_dir, pids = tmp_path / "bin", tmp_path / "pids"
    bin_dir.mkdir()
    pids.mkdir()
    fake = bin_dir / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_PIDS": str(pids)}
    proc = subprocess.Popen(["bash", str(SCRIPT), "--no-install", "--profile", "smoke", "--only", "00",
                             "--run-dir", str(tmp_path / "run")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            # as in a terminal: a runner that started us in the background (nohup, CI
                            # harnesses) leaves SIGINT ignored, and bash cannot trap a signal ignored at entry
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert _wait_for(lambda: (pids / "kernel").exists(), 30), proc.stderr
    time.sleep(1.5)  # let the watchdog take a snapshot of the tree
    return proc, int((pids / "papermill").read_text()), int((pids / "kernel").read_text())


def test_ctrl_c_stops_the_notebook_and_its_kernel_and_says_interrupted(tmp_path):
    proc, papermill, kernel = _start_fake_run(tmp_path)
    try:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130
        assert "interrupted" in err and "FAILED" not in err
        assert _wait_for(lambda: not _alive(kernel) and not _alive(papermill), 10)
    finally:
        for pid in (kernel, papermill):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_sigkill_of_the_script_leaves_no_orphans(tmp_path):
    proc, papermill, kernel = _start_fake_run(tmp_path)
    try:
        os.kill(proc.pid, signal.SIGKILL)  # the script alone; its children are not signalled
        proc.wait(timeout=10)
        assert _wait_for(lambda: not _alive(kernel) and not _alive(papermill), 15)
    finally:
        for pid in (kernel, papermill):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


RECORDING_PYTHON = f"""#!{sys.executable}
import json, os, sys
if len(sys.argv) > 1 and sys.argv[1] == "-c":
    sys.exit(0)  # the script's version probe
with open(os.environ["FAKE_LOG"], "a") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "figures": os.environ.get("DDLIB_FIGURES")}}) + "\\n")
"""


@pytest.mark.parametrize("explicit", [False, True])
def test_a_plain_run_writes_its_figures_into_its_run_folder_not_the_committed_ones(tmp_path, explicit):
    import json
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(RECORDING_PYTHON)
    (bin_dir / "python3").chmod(0o755)
    log = tmp_path / "log.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "DDLIB_FIGURES"}
    env.update({"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_LOG": str(log)})
    if explicit:
        env["DDLIB_FIGURES"] = str(tmp_path / "mine")
    run_dir = tmp_path / "run"
    proc = subprocess.run(["bash", str(SCRIPT), "--no-install", "--profile", "smoke", "--only", "00",
                           "--run-dir", str(run_dir)], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    notebook_runs = [c for c in calls if c["argv"][:2] == ["-m", "ddlib.tools.run_notebook"]]
    assert len(notebook_runs) == 1
    expected = str(tmp_path / "mine") if explicit else str(run_dir / "figures")
    assert notebook_runs[0]["figures"] == expected
    assert f"figures and tables: {expected}/smoke/" in proc.stdout
