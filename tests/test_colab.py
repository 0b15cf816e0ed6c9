"""The Colab badge and setup cell (ddlib.tools.colab): present in every notebook, harmless where ddlib
imports, and able to install the repository into a fresh environment (the path a Colab kernel takes)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

from ddlib.tools import colab

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_opens_with_the_current_badge_and_setup_cell(path):
    nb = nbformat.read(path, as_version=4)
    assert colab.is_current(nb, path.name, colab.declared_repository()), \
        f"run: python -m ddlib.tools.colab notebooks/{path.name}"
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    parameters = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    assert nb.cells[first_code].source == colab.setup_source(colab.declared_repository())
    assert first_code < parameters  # papermill injects right after the parameters cell, as before


def test_refresh_keeps_the_other_cells_and_their_outputs():
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("x = 1", execution_count=3,
                                     outputs=[nbformat.v4.new_output("stream", text="kept\n")])
    nb.cells = [nbformat.v4.new_markdown_cell("# title"), code]
    once = colab.with_setup_cells(nb, "00_x.ipynb", None)
    twice = colab.with_setup_cells(nbformat.from_dict(once), "00_x.ipynb", "https://github.com/owner/repo")
    assert [c.source for c in twice.cells[2:]] == ["# title", "x = 1"]
    assert twice.cells[3].outputs[0]["text"] == "kept\n" and twice.cells[3].execution_count == 3
    assert sum(colab.TAG in c.metadata.get("tags", []) for c in twice.cells) == 2
    assert twice.cells[0].id == once.cells[0].id
    assert colab.is_current(twice, "00_x.ipynb", "https://github.com/owner/repo")
    assert not colab.is_current(twice, "00_x.ipynb", None)


def test_badge_links_to_the_declared_github_repository_or_says_none_is_declared(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[project.urls]\n'
                                             'Repository = "https://github.com/owner/repo"\n')
    url = colab.declared_repository(tmp_path / "pyproject.toml")
    assert url == "https://github.com/owner/repo"
    assert "colab.research.google.com/github/owner/repo/blob/main/notebooks/01_a.ipynb" in \
        colab.badge_source("01_a.ipynb", url)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert colab.declared_repository(tmp_path / "pyproject.toml") is None
    assert "No repository address is declared" in colab.badge_source("01_a.ipynb", None)
    assert "_declared = ''" in colab.setup_source(None)


def test_setup_cell_does_nothing_where_ddlib_imports():
    out = subprocess.run([sys.executable, "-c", colab.setup_source(None)], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""


def _fresh_venv(path: Path) -> Path:
    """A virtual environment without ddlib that sees this environment's packages (torch, pip,
    setuptools, ...) through a plain path entry: a path line in a .pth file does not run the .pth
    files found there, so this environment's editable ddlib install stays invisible. pip installs
    into the fresh environment (the interpreter running it)."""
    base = Path(sys.base_prefix) / "bin" / "python3"
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(path)], check=True, timeout=300)
    python = path / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "parent_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.mark.slow
def test_setup_cell_installs_the_repository_into_a_fresh_environment(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is needed to clone the repository")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    python = _fresh_venv(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    clean = subprocess.run([str(python), "-c", "import ddlib"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert clean.returncode != 0, "the fresh environment must not see ddlib before the setup cell"

    # The notebook's own cells, run as one kernel would: the setup cell, then the cells up to the
    # first one that imports ddlib.
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    importing = next(i for i, s in enumerate(code) if "from ddlib" in s or "import ddlib" in s)
    script = "\n\n".join([code[0], *code[1:importing + 1], "import ddlib; print('ddlib from', ddlib.__file__)"])
    (tmp_path / "cells.py").write_text(script)
    env.update({colab.REPO_ENV: f"file://{clone}", colab.PIP_ARGS_ENV: "--no-deps --no-build-isolation",
                "DDLIB_PROFILE": "smoke", "MPLBACKEND": "Agg"})
    run = subprocess.run([str(python), "cells.py"], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"installing ddlib from file://{clone} (from ${colab.REPO_ENV})" in run.stdout
    assert f"ddlib from {tmp_path / 'venv'}" in run.stdout
