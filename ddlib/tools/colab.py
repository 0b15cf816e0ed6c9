"""Open any notebook in Colab (or another fresh kernel): a badge and a setup cell, written by this tool.

    python -m ddlib.tools.colab notebooks/*.ipynb          # insert or refresh
    python -m ddlib.tools.colab --check notebooks/*.ipynb  # exit 1 when a notebook lacks the current cells

Every notebook opens with two cells, both tagged :data:`TAG`:

* a Markdown cell with the "Open in Colab" badge. It links to the notebook on GitHub through Colab
  when ``pyproject.toml`` declares the repository (``[project.urls] Repository = "https://github.com/..."``);
  while none is declared, it opens Colab's start page and says to load the notebook from a fork or an
  upload;
* a code cell that does nothing where ``ddlib`` imports (this repository's environment, papermill,
  nbval) and otherwise installs the repository with pip from, in this order, the form field
  ``REPO_URL``, ``$DDLIB_REPO_URL`` or the URL declared in ``pyproject.toml`` — and says which. It
  then reports the torch device (CUDA when the runtime has a GPU: every notebook uses it through
  ``pick_device``). The data chain fetches its sources on first use (MNIST: torchvision download,
  else the ``mnist`` PyPI wheel; see the README's "Data" for the others and ``DDLIB_DATA_ROOT``).

The cells come before the ``parameters`` cell, so papermill still injects right after that one.
Other cells and their outputs are left as they are.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat

TAG = "colab-setup"
REPO_ENV = "DDLIB_REPO_URL"
PIP_ARGS_ENV = "DDLIB_PIP_ARGS"  # extra pip options (the test: --no-deps --no-build-isolation)
GITHUB = re.compile(r"^https://github\.com/(?P<owner>[^/]+)/(?P<repo>[^/]+?)(?:\.git)?/?$")


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


def badge_source(notebook: str, repository: str | None) -> str:
    """The Markdown of the badge cell."""
    image = "https://colab.research.google.com/assets/colab-badge.svg"
    match = GITHUB.match(repository or "")
    if match:
        link = (f"https://colab.research.google.com/github/{match['owner']}/{match['repo']}/blob/main/"
                f"notebooks/{notebook}")
        note = ("The first code cell installs this repository when `ddlib` is missing (Colab); "
                "elsewhere it does nothing.")
    else:
        link = "https://colab.research.google.com/"
        note = ("No repository address is declared in `pyproject.toml` yet: in Colab, open this notebook "
                "from your copy (File → Open notebook → GitHub or Upload) and put the git URL of the "
                "repository into the setup cell's `REPO_URL` field (or `$DDLIB_REPO_URL`).")
    return (f"[![Open In Colab]({image})]({link})\n\n{note} On a free Colab GPU use the `quick` profile "
            f"(the default); `paper` needs a large GPU and many hours (README, \"A cluster\", under \"Two commands\").")


def setup_source(repository: str | None) -> str:
    """The code of the setup cell (``repository``: the URL declared in ``pyproject.toml``, or None)."""
    declared = repr(repository or "")
    return f'''# Setup for Colab or any kernel without ddlib: does nothing where ddlib imports (written by ddlib.tools.colab).
REPO_URL = ""  # @param {{type:"string"}}
import importlib, importlib.util, os, subprocess, sys
if importlib.util.find_spec("ddlib") is None:
    _declared = {declared}  # [project.urls] of pyproject.toml when the tool ran
    _url, _source = next(((u, s) for u, s in ((REPO_URL, "the REPO_URL field"),
                                             (os.environ.get("{REPO_ENV}", ""), "${REPO_ENV}"),
                                             (_declared, "pyproject.toml")) if u), (None, None))
    if _url is None:
        raise RuntimeError("ddlib is not installed and no repository address is declared in pyproject.toml: "
                           "put the git URL of this repository (or your fork) into REPO_URL above or ${REPO_ENV}")
    _spec = _url if _url.startswith("git+") or _url.endswith((".zip", ".tar.gz")) else "git+" + _url
    print(f"installing ddlib from {{_url}} (from {{_source}})")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", *os.environ.get("{PIP_ARGS_ENV}", "").split(),
                           _spec])
    importlib.invalidate_caches()
    import torch
    print("torch device:", "cuda (" + torch.cuda.get_device_name(0) + ")" if torch.cuda.is_available() else
          "cpu (Runtime → Change runtime type → GPU for a GPU)")'''


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
    repository = declared_repository()
    stale = []
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        if is_current(nb, path.name, repository):
            continue
        if args.check:
            stale.append(path)
            continue
        nbformat.write(with_setup_cells(nb, path.name, repository), path)
        print(f"setup cells written: {path}")
    for path in stale:
        print(f"{path}: missing or outdated Colab setup cells; run python -m ddlib.tools.colab {path}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
