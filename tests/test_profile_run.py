"""The run profile read from a cache: build records in meta.json and own-time accounting."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from ddlib.core.cache import ArtifactDir
from ddlib.tools import profile_run
from ddlib.tools.profile_run import Build, own_seconds, profile_table


def test_commit_under_the_lock_records_the_build_interval(tmp_path):
    artifact = ArtifactDir("things", {"a": 1}, code=(), root=tmp_path)
    with artifact.lock():
        time.sleep(0.05)
        artifact.commit({"x.txt": lambda p: p.write_text("x")}, {"note": "test"})
    build = artifact.meta()["build"]
    assert build["seconds"] >= 0.05
    assert build["finished"] - build["started"] == pytest.approx(build["seconds"])
    assert artifact.meta()["provenance"] == {"note": "test"}  # the record stays out of the provenance


def test_commit_without_the_lock_has_no_build_time(tmp_path):
    artifact = ArtifactDir("things", {"a": 2}, code=(), root=tmp_path)
    artifact.commit({"x.txt": lambda p: p.write_text("x")}, {})
    assert artifact.meta()["build"]["seconds"] is None
    builds, unknown = profile_run.read_builds(tmp_path)
    assert (builds, unknown) == ([], 1)


def test_own_seconds_subtract_nested_builds_of_the_same_process_only():
    builds = [Build("synthetic/dm", "synthetic/dm", 0.0, 10.0, pid=1),      # contains the two below
              Build("surrogates", "surrogates", 1.0, 4.0, pid=1),           # contains the data set
              Build("datasets/x", "datasets/x", 1.5, 2.0, pid=1),
              Build("experts", "experts", 5.0, 6.0, pid=1),
              Build("surrogates", "surrogates", 2.0, 3.0, pid=2),           # another process: not nested
              Build("evaluations/synthetic", "evaluations/synthetic", 10.0, 12.0, pid=1)]  # after, not inside
    assert own_seconds(builds) == pytest.approx([10 - 3 - 1, 3 - 0.5, 0.5, 1.0, 1.0, 2.0])


def test_profile_table_sums_by_kind_and_adds_the_remainder():
    builds = [Build("synthetic/dm", "synthetic/dm", 0.0, 10.0, 1), Build("surrogates", "surrogates", 1.0, 4.0, 1),
              Build("surrogates", "surrogates", 20.0, 22.0, 1)]
    table = profile_table(builds, total_seconds=20.0).set_index("what")
    assert table.loc["synthetic/dm", "seconds"] == 7.0
    assert table.loc["surrogates", ["builds", "seconds"]].tolist() == [2, 5.0]
    rest = [w for w in table.index if w.startswith("not in any artifact")]
    assert table.loc[rest[0], "seconds"] == 8.0
    assert table.loc["total", "seconds"] == 20.0 and table.loc["total", "% of run"] == 100.0
    assert table.loc["synthetic/dm", "% of run"] == 35.0


def test_command_prints_the_profile_of_a_cache(tmp_path, capsys):
    for key, method in ((1, "DM"), (2, "MTT")):
        artifact = ArtifactDir("evaluations/synthetic", {"k": key}, code=(), root=tmp_path)
        with artifact.lock():
            artifact.commit({"r.json": lambda p: p.write_text("{}")}, {"method": method})
    times = tmp_path / "run_times.csv"
    pd.DataFrame({"notebook": ["01.ipynb", "all notebooks"], "seconds": [5, 5]}).to_csv(times, index=False)
    profile_run.main(["--cache", str(tmp_path), "--run-times", str(times)])
    out = capsys.readouterr().out
    assert "evaluations/synthetic (DM)" in out and "evaluations/synthetic (MTT)" in out
    assert "01.ipynb" in out  # one process, one notebook: the column is named after it


def test_command_explains_an_empty_or_missing_cache(tmp_path):
    with pytest.raises(SystemExit, match="no artifact .* records its build time"):
        profile_run.main(["--cache", str(tmp_path)])
    with pytest.raises(SystemExit, match="no cache folder"):
        profile_run.main(["--cache", str(tmp_path / "missing")])
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "meta.json").write_text(json.dumps({"kind": "a", "build": {"started": 0.0, "finished": 1.0}}))
    with pytest.raises(SystemExit, match="no run-time table"):
        profile_run.main(["--cache", str(tmp_path), "--run-times", str(tmp_path / "none.csv")])
