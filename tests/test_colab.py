"""The Colab badge and setup cell (ddlib.tools.colab): present in every notebook, harmless where ddlib
imports, and able to install the repository into a fresh environment (the path a Colab kernel takes)."""

from __future__ import annotations

import importlib.metadata
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
    assert colab.is_current(nb, path.name, colab.repository()), \
        f"run: python -m ddlib.tools.colab notebooks/{path.name}"
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    parameters = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    assert nb.cells[first_code].source == colab.setup_source(colab.repository())
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


def test_no_badge_without_a_github_address_and_the_cell_says_how_to_declare_one():
    for address in (None, "https://gitlab.com/owner/repo"):
        badge = colab.badge_source("01_a.ipynb", address)
        assert "colab-badge.svg" not in badge and "](http" not in badge  # no link at all, so none is dead
        assert "[project.urls] Repository" in badge and "python -m ddlib.tools.colab" in badge
    assert "is not a GitHub address" in colab.badge_source("01_a.ipynb", "https://gitlab.com/owner/repo")
    assert colab.colab_link("01_a.ipynb", "https://github.com/owner/repo.git") == \
        "https://colab.research.google.com/github/owner/repo/blob/main/notebooks/01_a.ipynb"


def test_a_fork_declares_its_address_through_the_environment_while_the_tool_runs(monkeypatch):
    monkeypatch.setenv(colab.REPO_ENV, "https://github.com/fork/repo")
    assert colab.repository() == "https://github.com/fork/repo"
    monkeypatch.delenv(colab.REPO_ENV)
    assert colab.repository() == colab.declared_repository()


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


def _clone(tmp_path: Path) -> Path:
    """A git repository of this working tree as it is now (uncommitted edits included, committed there),
    which the setup cell installs from like from GitHub."""
    if shutil.which("git") is None:
        pytest.skip("git is needed to clone the repository")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    listed = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source, target = ROOT / name, clone / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        elif target.exists():
            target.unlink()  # deleted in the working tree
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "add", "-A"], cwd=clone, check=True)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "working tree"], cwd=clone, check=True,
                   env={**os.environ, **identity})
    return clone


def _fresh_kernel(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """What a fresh Colab kernel meets: a clone of this working tree to install from, the python of a
    fresh environment without ddlib, and an environment without this checkout's paths."""
    clone = _clone(tmp_path)
    python = _fresh_venv(tmp_path / "venv")
    return clone, python, {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


@pytest.mark.slow
def test_setup_cell_installs_the_repository_into_a_fresh_environment(tmp_path):
    clone, python, env = _fresh_kernel(tmp_path)
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
    assert f"installing ddlib[colab] from file://{clone} (from ${colab.REPO_ENV})" in run.stdout
    assert f"ddlib from {tmp_path / 'venv'}" in run.stdout
    assert "no restart needed" in run.stdout  # pip added ddlib and replaced nothing the kernel had imported

    # Installed into site-packages, not run from a checkout: outputs go under $DDLIB_OUTPUT, and the
    # provenance names the commit pip installed.
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True,
                          check=True).stdout.strip()
    probe = ("from ddlib.core.plots import figures_dir; from ddlib.core.results import code_version; "
             "print(figures_dir('smoke')); print(code_version())")
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                         env={**{k: v for k, v in env.items() if k != "DDLIB_FIGURES"}, "DDLIB_OUTPUT": str(tmp_path / "out")},
                         timeout=120)
    assert out.returncode == 0, out.stderr
    folder, version = out.stdout.strip().splitlines()
    assert folder == str(tmp_path / "out" / "figures" / "smoke")
    assert "'source': 'installed'" in version and f"'git_commit': '{head}'" in version


def _package(folder: Path, name: str, version: str) -> Path:
    """A one-module distribution ``name`` at ``version``, as a source folder pip can install."""
    folder.mkdir(parents=True)
    (folder / f"{name}.py").write_text(f"VERSION = {version!r}\n")
    (folder / "pyproject.toml").write_text(
        f'[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\n[tool.setuptools]\npy-modules = ["{name}"]\n')
    return folder


@pytest.mark.slow
def test_setup_cell_asks_for_a_restart_only_when_pip_replaced_an_imported_package(tmp_path):
    clone, python, env = _fresh_kernel(tmp_path)
    old = _package(tmp_path / "old", "kernelpkg", "1.0")
    new = _package(tmp_path / "new", "kernelpkg", "2.0")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(old)],
                   check=True, timeout=300, env=env, capture_output=True)
    # The kernel imported kernelpkg 1.0; pip installs 2.0 beside ddlib (an extra requirement through
    # the pip options), as it would replace a Colab package ddlib needed in another release.
    (tmp_path / "cells.py").write_text("import kernelpkg\n\n" + colab.setup_source(None))
    env.update({colab.REPO_ENV: f"file://{clone}", "MPLBACKEND": "Agg",
                colab.PIP_ARGS_ENV: f"--no-deps --no-build-isolation {new}"})
    run = subprocess.run([str(python), "cells.py"], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "kernelpkg 1.0 -> 2.0" in run.stdout and "restart the runtime" in run.stdout
    assert "no restart needed" not in run.stdout


def _requirements(extra: str) -> list[str]:
    """ddlib's requirements in ``pyproject.toml`` plus those of ``extra``."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        from pip._vendor import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [*project["dependencies"], *project["optional-dependencies"][extra]]


@pytest.mark.slow
def test_colab_extra_resolves_against_the_colab_stack(tmp_path):
    """ddlib[colab]'s requirements together with Colab's preinstalled releases (tests/colab_pins.txt,
    approximate) resolve, so the setup cell's pip keeps Colab's torch, numpy, pandas... Resolved for this
    interpreter (Colab runs 3.12; the requirements carry no Python-version markers), in an isolated
    dry run that installs nothing; skipped when the package index cannot answer."""
    if any(";" in r for r in _requirements("colab")):
        pytest.fail("a requirement has an environment marker: resolve for Colab's Python 3.12 too")
    (tmp_path / "ddlib.txt").write_text("\n".join(_requirements("colab")) + "\n")
    report = tmp_path / "report.json"
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
                          "--only-binary=:all:", "--report", str(report), "-r", str(tmp_path / "ddlib.txt"),
                          "-r", str(ROOT / "tests" / "colab_pins.txt")],
                         capture_output=True, text=True, timeout=900)
    if run.returncode != 0 and ("from versions: none" in run.stderr or "NewConnectionError" in run.stderr
                                or "Could not fetch URL" in run.stderr):
        pytest.skip("the package index does not offer Colab's releases here: " + run.stderr.strip()[-300:])
    assert run.returncode == 0, "ddlib[colab] conflicts with Colab's preinstalled releases:\n" + run.stderr
    import json
    chosen = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}
    for line in (ROOT / "tests" / "colab_pins.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            assert chosen[name.strip().lower()] == version.strip()


def _distribution(folder: Path, direct_url: str | None) -> importlib.metadata.Distribution:
    import importlib.metadata
    info = folder / "ddlib-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ddlib\nVersion: 0.1.0\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(direct_url)
    return importlib.metadata.PathDistribution(info)


def test_provenance_of_an_installed_copy_comes_from_pip_s_record(tmp_path):
    from ddlib.core import results
    git = _distribution(tmp_path / "git", '{"url": "https://github.com/o/r", "vcs_info": {"vcs": "git", '
                        '"commit_id": "abc123", "requested_revision": "main"}}')
    assert results.installed_distribution(git) == {"version": "0.1.0", "url": "https://github.com/o/r", "vcs": "git",
                                                   "commit": "abc123", "requested_revision": "main"}
    wheel = _distribution(tmp_path / "wheel", None)
    assert results.installed_distribution(wheel) == {"version": "0.1.0"}
    damaged = _distribution(tmp_path / "damaged", "{not json")
    assert results.installed_distribution(damaged) == {"version": "0.1.0"}
    editable = _distribution(tmp_path / "editable", '{"url": "file:///src", "dir_info": {"editable": true}}')
    assert results.installed_distribution(editable)["editable"] is True
    # this test runs from the checkout: the commit comes from git, whatever pip recorded
    assert results.code_version(git)["source"] == "checkout"
