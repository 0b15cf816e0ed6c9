import subprocess
from pathlib import Path

import pandas as pd
import pytest

from ddlib.profiles import PROFILES
from ddlib.reference import reported_accuracy
from ddlib.tools.report import markdown_table

ROOT = Path(__file__).resolve().parent.parent


def test_paper_numbers_come_only_from_the_reference_table():
    assert reported_accuracy("colored_mnist", 0.05, 50, "DM") == 23.8
    assert reported_accuracy("colored_mnist", 0.05, 10, "DM") is None


def test_markdown_table_formats_missing_values():
    md = markdown_table(pd.DataFrame([{"a": 12.34, "b": None, "c": 0.456, "d": 3}]),
                        {"a": "A", "b": "B", "c": "C", "d": "D"})
    # one decimal from 10 up, two below (ratios, weights), integers as they are, missing as a dash
    assert md.splitlines()[2] == "| 12.3 | — | 0.46 | 3 |"
    # a count held in a float column (a mean over seeds of equal iteration counts) is shown as an integer
    md = markdown_table(pd.DataFrame([{"iterations": 100.0, "acc": 100.0}, {"iterations": float("nan"), "acc": 1.5}]),
                        {"iterations": "iterations", "acc": "acc"})
    assert md.splitlines()[2:] == ["| 100 | 100.0 |", "| — | 1.5 |"]


@pytest.mark.parametrize("args, message", [
    (["--profile", "fast"], "unknown profile"),
    (["--only", "no-such-notebook", "--no-install"], "no notebook matches"),
    (["--bogus"], "unknown option"),
])
def test_reproduce_script_rejects_bad_arguments(args, message):
    proc = subprocess.run(["bash", str(ROOT / "reproduce.sh"), *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr


def test_reproduce_script_help():
    proc = subprocess.run(["bash", str(ROOT / "reproduce.sh"), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--profile" in proc.stdout and "--tests" in proc.stdout


def test_provenance_says_when_the_code_differs_from_the_commit(tmp_path, monkeypatch):
    import ddlib.core.results as results

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    import json

    def notebook(source, output):
        cell = {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": source,
                "outputs": [{"output_type": "stream", "name": "stdout", "text": output}]}
        (tmp_path / "notebooks" / "n.ipynb").write_text(json.dumps({"cells": [cell], "nbformat": 4}))

    (tmp_path / "ddlib").mkdir()
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "ddlib" / "m.py").write_text("x = 1\n")
    notebook("print(1)", "1")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    monkeypatch.setattr(results, "repo_root", lambda: tmp_path)
    assert results.git_code_changed() is False and len(results.git_commit()) == 40
    notebook("print(1)", "1 (executed again)")   # new outputs are not a code change
    assert results.git_code_changed() is False
    notebook("print(2)", "2")                    # a changed cell is
    assert results.git_code_changed() is True
    notebook("print(1)", "1")
    (tmp_path / "ddlib" / "m.py").write_text("x = 2\n")
    assert results.git_code_changed() is True
    assert results.run_provenance(PROFILES["smoke"], "cpu")["uncommitted_code_changes"] is True


def test_run_times_table_reads_the_reproduce_summary():
    from ddlib.tools.report import run_times_table
    table, meta = run_times_table("profile quick\ncommit abc1234\n  00_datasets.ipynb   98s  ok\n"
                                  "  01_bias_analysis.ipynb   2118s  ok\n  executed notebooks: runs/x/\n")
    assert meta == {"profile": "quick", "commit": "abc1234"}
    assert table["seconds"].tolist() == [98, 2118, 2216]
    assert table["notebook"].iloc[-1] == "all notebooks" and table["status"].iloc[-1] == "ok"


def test_synthetic_debiasing_reading_uses_the_notebooks_welch_verdicts():
    import pandas as pd
    from ddlib.tools.report import synthetic_debiasing_reading
    rows = [("DM", "ERM", 25.0, None, "—", None, "—"), ("DM", "JTT", 27.0, 2.0, "within noise", None, "—"),
            ("DM + KDE", "ERM", 80.0, None, "—", 55.0, "better than DM with ERM"),
            ("DM + KDE", "JTT", 40.0, -40.0, "worse than ERM", 15.0, "within noise")]
    df = pd.DataFrame([{"data set": "CM", "IPC": 10, "synthetic set": s, "training": m, "acc": a, "vs ERM": v,
                        "verdict vs ERM": vv, "vs DM ERM": d, "verdict vs DM ERM": dv}
                       for s, m, a, v, vv, d, dv in rows])
    text = synthetic_debiasing_reading(df)
    assert "ERM reaches 25.0 %; JTT 27.0 % (+2.0 points: within noise)" in text
    assert "80.0 % (+55.0 points against ERM on the DM sets: better than DM with ERM)" in text
    assert "with JTT (chosen on the validation split) 40.0 % (-40.0 points against ERM on the same sets: worse" in text


def test_surrogate_ablation_reading_is_notebook_03s_own_from_its_saved_tables(tmp_path):
    import pandas as pd
    from ddlib.tools.report import surrogate_ablation_reading
    runs = pd.DataFrame([{"title": "CM", "variant": v, "acc": a, "seed": s}
                         for v, accs in (("SupCon (default)", (70.0, 71.0, 72.0)), ("SupCon 3 ep.", (60.0, 61.0, 59.0)))
                         for s, a in enumerate(accs)])
    table = pd.DataFrame([{"title": "CM", "variant": "SupCon (default)", "family": "default", "surrogate epochs": 1.0,
                           "acc": 71.0, "weight on conflicting": 0.8},
                          {"title": "CM", "variant": "SupCon 3 ep.", "family": "training length", "surrogate epochs": 3.0,
                           "acc": 60.0, "weight on conflicting": 0.7}])
    runs.to_csv(tmp_path / "03_runs.csv", index=False)
    pd.DataFrame([{"data set": "CM", "variants": 2, "Spearman ρ": 1.0}]).to_csv(tmp_path / "03_rank_correlation.csv",
                                                                                index=False)
    text = surrogate_ablation_reading(table, tmp_path)
    assert "Spearman ρ = 1.00 over 2 variants" in text
    assert "3 epochs 60.0 %" in text and "**confirmed**" in text
    assert surrogate_ablation_reading(table, tmp_path / "missing") == ""


def test_headline_table_puts_the_papers_cell_beside_ours():
    from ddlib.tools.report import headline_table
    common = {"dataset": "colored_mnist", "title": "CM", "conflict_ratio": 0.05, "ipc": 10, "method": "DM"}
    df = pd.DataFrame([
        {**common, "method": "random real", "weighting": "vanilla", "acc": 20.0, "± 95 %": 1.0},
        {**common, "weighting": "vanilla", "acc": 22.6, "± 95 %": 6.9},
        {**common, "weighting": "KDE/SupCon", "acc": 80.5, "± 95 %": 2.0, "gain vs vanilla": 57.9, "gain low": 51.6,
         "gain high": 64.2, "vs vanilla": "better"},
        {**common, "weighting": "conflicting only", "acc": 80.4, "± 95 %": 2.3},
        {**common, "method": "DSA", "weighting": "vanilla", "acc": 24.2, "± 95 %": 4.1},
        {**common, "method": "DSA", "weighting": "KDE/SupCon", "acc": 57.2, "± 95 %": 12.1, "gain vs vanilla": 33.0,
         "gain low": 22.2, "gain high": 43.8, "vs vanilla": "better"}])
    table = headline_table(df)
    assert table["method"].tolist() == ["DM", "DSA"]
    dm = table.iloc[0]
    assert (dm["vanilla %"], dm["+ KDE/SupCon %"], dm["gain, points [95 %]"]) == \
        ("22.6 ± 6.9", "80.5 ± 2.0", "+57.9 [+51.6, +64.2]")
    paper = (reported_accuracy("colored_mnist", 0.05, 50, "DM"), reported_accuracy("colored_mnist", 0.05, 50,
                                                                                   "DM + KDE/SupCon"))
    assert dm["paper %, vanilla → + KDE/SupCon"] == f"{paper[0]:.1f} → {paper[1]:.1f} (IPC 50)"
    assert table.iloc[1]["paper %, vanilla → + KDE/SupCon"] == "—"  # the paper's abstract has no DSA cell


def test_notebook_table_reads_each_notebooks_title_and_its_run_time(tmp_path):
    import json
    from ddlib.tools.report import notebooks_markdown
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "figures" / "quick").mkdir(parents=True)
    for name, title in (("00_a.ipynb", "# 00 · The data"), ("01_b.ipynb", "# 01 · Bias, measured")):
        cells = [{"cell_type": "markdown", "source": "*Colab:* a badge"}, {"cell_type": "markdown", "source": [title]}]
        (tmp_path / "notebooks" / name).write_text(json.dumps({"cells": cells}))
    pd.DataFrame([{"notebook": "00_a.ipynb", "minutes": 1.4}, {"notebook": "all notebooks", "minutes": 1.4}]) \
        .to_csv(tmp_path / "figures" / "quick" / "run_times.csv", index=False)
    lines = notebooks_markdown("quick", tmp_path).splitlines()
    assert lines[2] == "| [00_a.ipynb](notebooks/00_a.ipynb) | The data | 1.4 |"
    assert lines[3] == "| [01_b.ipynb](notebooks/01_b.ipynb) | Bias, measured | — |"  # not in the run-time table
    assert lines[-1].endswith("all notebooks: 1.4 min.")
