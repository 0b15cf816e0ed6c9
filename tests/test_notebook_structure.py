"""The committed notebooks follow the conventions that nbval and papermill rely on."""

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# notebooks not yet in reproduce.sh (committed unexecuted; nbval still runs them in smoke)
PENDING = sorted((Path(__file__).resolve().parent.parent / "notebooks" / "pending").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS + PENDING, ids=lambda p: p.name)
def test_one_parameters_cell_reading_the_profile_from_the_environment(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell must be tagged 'parameters'"
    assert "profile = None" in tagged[0].source
    # an injected cell would pin the profile and make nbval run the committed notebook in it
    injected = [c for c in nb.cells if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    assert not injected, "remove the papermill 'injected-parameters' cell before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_executed_without_errors(path):
    nb = nbformat.read(path, as_version=4)
    # the Colab setup cell (ddlib.tools.colab) does nothing here; the tool may add it without a rerun
    code = [c for c in nb.cells if c.cell_type == "code" and "colab-setup" not in c.metadata.get("tags", [])]
    assert all(c.get("execution_count") for c in code), "commit the notebook executed (reproduce.sh --in-place)"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
