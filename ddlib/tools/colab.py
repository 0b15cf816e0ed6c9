"""Open any notebook in Colab (or another fresh kernel): a badge and a setup cell, written by this tool.

    python -m ddlib.tools.colab notebooks/*.ipynb          # insert or refresh
    python -m ddlib.tools.colab --check notebooks/*.ipynb  # exit 1 when a notebook lacks the current cells

Every notebook opens with two cells, both tagged :data:`TAG`:

* a Markdown cell with the "Open in Colab" badge, linking to the notebook on GitHub through Colab,
  when a GitHub repository is declared: ``[project.urls] Repository = "https://github.com/<you>/<repo>"``
  in ``pyproject.toml``, or ``$DDLIB_REPO_URL`` while this tool runs (a one-off for a fork: the test
  and ``--check`` compare with the same address). While none is declared there is no badge (it would
  be a dead link): the cell says how to declare one;
* a code cell that does nothing where ``ddlib`` imports (this repository's environment, papermill,
  nbval) and otherwise installs ``ddlib[colab]`` with pip from, in this order, the form field
  ``REPO_URL``, ``$DDLIB_REPO_URL`` or the address declared when this tool ran — and says which. Only
  what the kernel lacks is installed (the ``colab`` extra, not ``notebooks``/``cluster``); where pip
  replaced a package the kernel had already imported, it says to restart the runtime, else that no
  restart is needed. It then reports the torch device (CUDA when the runtime has a GPU: every notebook
  uses it through ``pick_device``). The data chain fetches its sources on first use (see docs/running.md,
  "Data", and ``DDLIB_DATA_ROOT``).

The cells come before the ``parameters`` cell, so papermill still injects right after that one.
Other cells and their outputs are left as they are.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat

TAG = "colab-setup"
REPO_ENV = "DDLIB_REPO_URL"
PIP_ARGS_ENV = "DDLIB_PIP_ARGS"  # extra pip options (the test: --no-deps --no-build-isolation)
GITHUB = re.compile(r"^https://github\.com/(?P<owner>[^/]+)/(?P<repo>[^/]+?)(?:\.git)?/?$")


def repository(pyproject: Path | None = None) -> str | None:
    """The repository address the cells are written for: ``$DDLIB_REPO_URL`` when set (a fork, while
    running this tool), else :func:`declared_repository`."""
    return os.environ.get(REPO_ENV, "").strip() or declared_repository(pyproject)


def declared_repository(pyproject: Path | None = None) -> str | None:
    """The repository URL declared in ``pyproject.toml``'s ``[project.urls]`` (Repository, Source or
    Homepage), or None while none is declared."""
    pyproject = pyproject or Path(__file__).resolve().parents[2] / "pyproject.toml"
    if not pyproject.exists():
        return None
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pip's vendored parser
        from pip._vendor import tomli as tomllib
    urls = tomllib.loads(pyproject.read_text()).get("project", {}).get("urls", {})
    for key in ("Repository", "repository", "Source", "source", "Homepage", "homepage"):
        if urls.get(key):
            return str(urls[key])
    return None


DECLARE = ('For a fork on GitHub: add `[project.urls] Repository = "https://github.com/<you>/<repo>"` to '
           '`pyproject.toml` and run `python -m ddlib.tools.colab notebooks/*.ipynb`.')


def colab_link(notebook: str, repository: str | None) -> str | None:
    """Colab's address of ``notebooks/<notebook>`` on GitHub's ``main`` branch, or None where
    ``repository`` is not a GitHub address (Colab opens notebooks from GitHub only)."""
    match = GITHUB.match(repository or "")
    if not match:
        return None
    return f"https://colab.research.google.com/github/{match['owner']}/{match['repo']}/blob/main/notebooks/{notebook}"


def badge_source(notebook: str, repository: str | None) -> str:
    """The Markdown of the badge cell: the badge where :func:`colab_link` has an address, else how to
    declare one (no dead badge)."""
    link = colab_link(notebook, repository)
    if link is None:
        declared = f"`{repository}` is not a GitHub address" if repository else "No repository address is declared"
        return f"*Colab:* {declared}, so this notebook has no \"Open in Colab\" link. {DECLARE}"
    image = "https://colab.research.google.com/assets/colab-badge.svg"
    return (f"[![Open In Colab]({image})]({link})\n\nThe first code cell installs this repository when `ddlib` "
            "is missing (Colab); elsewhere it does nothing. On a free Colab GPU use the `quick` profile (the "
            "default); `paper` needs a large GPU and many hours (docs/cluster.md).")


# The setup cell's code, a template (no f-string: the code has braces of its own).
SETUP = '''# Setup for Colab or any kernel without ddlib: does nothing where ddlib imports (written by ddlib.tools.colab).
REPO_URL = ""  # @param {type:"string"}
import importlib, importlib.metadata, importlib.util, os, re, subprocess, sys
if importlib.util.find_spec("ddlib") is None:
    _declared = __DECLARED__  # the repository address declared when ddlib.tools.colab wrote this cell
    _candidates = ((REPO_URL, "the REPO_URL field"), (os.environ.get("__REPO_ENV__", ""), "$__REPO_ENV__"),
                   (_declared, "the address declared when this cell was written"))
    _url, _source = next(((u, s) for u, s in _candidates if u), (None, None))
    if _url is None:
        raise RuntimeError("ddlib is not installed and no repository address is declared: put the git URL of this "
                           "repository (or your fork) into REPO_URL above or $__REPO_ENV__, or declare it for every "
                           "notebook ([project.urls] Repository in pyproject.toml, then python -m ddlib.tools.colab "
                           "notebooks/*.ipynb)")
    _spec = _url if _url.startswith("git+") or _url.endswith((".zip", ".tar.gz")) else "git+" + _url
    # PEP 508 wants a host in a direct reference: a local clone's git+file:///path becomes file://localhost/path
    _spec = re.sub(r"^git\\+file:///", "git+file://localhost/", _spec)
    _name = lambda name: re.sub(r"[-_.]+", "-", name or "").lower()

    def _versions():  # {distribution: version}, the first of each name on sys.path: the one imports find
        found = {}
        for dist in importlib.metadata.distributions():
            found.setdefault(_name(dist.metadata["Name"]), dist.version)
        return found

    # Only what the kernel lacks: the colab extra, not notebooks/cluster; the kernel's torch, numpy,
    # pandas, ... stay wherever they satisfy ddlib's requirements.
    _before = _versions()
    print(f"installing ddlib[colab] from {_url} (from {_source})")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *os.environ.get("__PIP_ARGS_ENV__", "").split(),
                           "ddlib[colab] @ " + _spec])
    importlib.invalidate_caches()
    _after = _versions()
    _owners = importlib.metadata.packages_distributions()  # {top-level module: [distributions]}
    _imported = {_name(d) for m in list(sys.modules) if "." not in m for d in _owners.get(m, ())}
    _replaced = sorted(n for n, v in _before.items() if _after.get(n) != v and n in _imported)
    if _replaced:  # the kernel still runs the old code of these: only a restart loads the new one
        print("pip replaced packages this kernel had already imported (" + ", ".join(
            f"{n} {_before[n]} -> {_after.get(n, 'removed')}" for n in _replaced) + "): restart the runtime "
            "(Runtime → Restart session), then run the notebook from the top (this cell then does nothing)")
    else:
        print("no restart needed: pip replaced no package this kernel had imported")
    import torch
    print("torch device:", "cuda (" + torch.cuda.get_device_name(0) + ")" if torch.cuda.is_available() else
          "cpu (Runtime → Change runtime type → GPU for a GPU)")'''


def setup_source(repository: str | None) -> str:
    """The code of the setup cell (``repository``: the address declared when the tool runs, or None)."""
    return (SETUP.replace("__DECLARED__", repr(repository or "")).replace("__REPO_ENV__", REPO_ENV)
            .replace("__PIP_ARGS_ENV__", PIP_ARGS_ENV))


def _tagged(cell) -> bool:
    return TAG in cell.get("metadata", {}).get("tags", [])


def with_setup_cells(nb: nbformat.NotebookNode, name: str, repository: str | None) -> nbformat.NotebookNode:
    """``nb`` with its badge and setup cells (re)written at the top; other cells untouched."""
    badge = nbformat.v4.new_markdown_cell(badge_source(name, repository), metadata={"tags": [TAG]})
    setup = nbformat.v4.new_code_cell(setup_source(repository), metadata={"tags": [TAG]})
    old = [c for c in nb.cells if _tagged(c)]
    for new, previous in zip((badge, setup), old):
        new["id"] = previous.get("id", new["id"])  # stable ids: a refresh changes only the text
        if previous.cell_type == "code" and previous.source == setup.source:
            new["execution_count"] = previous.get("execution_count")
            new["outputs"] = previous.get("outputs", [])
    nb.cells = [badge, setup, *(c for c in nb.cells if not _tagged(c))]
    return nb


def is_current(nb: nbformat.NotebookNode, name: str, repository: str | None) -> bool:
    """True when ``nb`` opens with the badge and setup cells this tool writes now."""
    head = nb.cells[:2]
    return (len(head) == 2 and all(_tagged(c) for c in head) and head[0].source == badge_source(name, repository)
            and head[1].cell_type == "code" and head[1].source == setup_source(repository)
            and sum(_tagged(c) for c in nb.cells) == 2)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ddlib.tools.colab", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when a notebook is not current")
    args = parser.parse_args(argv)
    address = repository()
    stale = []
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        if is_current(nb, path.name, address):
            continue
        if args.check:
            stale.append(path)
            continue
        nbformat.write(with_setup_cells(nb, path.name, address), path)
        print(f"setup cells written: {path}")
    for path in stale:
        print(f"{path}: missing or outdated Colab setup cells; run python -m ddlib.tools.colab {path}", file=sys.stderr)
    if colab_link("x.ipynb", address) is None and not args.check:
        print(f"no GitHub repository declared ({address or 'none'}), so no Colab badge. {DECLARE}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
