from pathlib import Path

import pandas as pd

from ddlib.core.paths import portable
from ddlib.core.results import save_table, skipped_note


def test_machine_paths_become_relative_to_their_root(tmp_path, monkeypatch):
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    monkeypatch.setenv("DDLIB_DATA_ROOT", str(data))
    monkeypatch.setenv("DDLIB_CACHE", str(cache))
    record = {"source": f"idx files in {data}/fashion-mnist", "cache": [str(cache / "datasets" / "x")],
              "n": 3, "folder": data / "cifar"}
    out = portable(record)
    assert out == {"source": "idx files in $DDLIB_DATA_ROOT/fashion-mnist", "cache": ["$DDLIB_CACHE/datasets/x"],
                   "n": 3, "folder": "$DDLIB_DATA_ROOT/cifar"}
    assert str(tmp_path) not in skipped_note("bffhq", FileNotFoundError(f"not found in {data}"))


def test_saved_tables_and_provenance_hold_no_machine_path(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("DDLIB_DATA_ROOT", str(data))
    monkeypatch.setenv("DDLIB_FIGURES", str(tmp_path / "figures"))
    csv = save_table(pd.DataFrame({"source": [f"{data}/mnist.npz"], "acc": [1.0]}), "t", "smoke",
                     {"dataset": {"source": str(data / "mnist.npz")}})
    for path in (csv, Path(str(csv).replace(".csv", ".provenance.json"))):
        text = path.read_text()
        assert str(tmp_path) not in text and "$DDLIB_DATA_ROOT/mnist.npz" in text
