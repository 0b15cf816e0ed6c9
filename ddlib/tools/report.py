"""Write the results sections of the README and of ``docs/results.md`` from the tables the notebooks saved.

    python -m ddlib.tools.report --profile quick            # print the full results (docs/results.md)
    python -m ddlib.tools.report --profile quick --update-readme
    python -m ddlib.tools.report --run-times runs/<dir>/summary.txt --note "empty cache, 2 CPU cores"

Every number comes from ``figures/<profile>/*.csv`` written by an executed notebook, with the
paper's number (``ddlib/reference.py``) in its own column where the paper reports one. ``--update-readme``
replaces, between ``<!-- results:start -->`` and ``<!-- results:end -->``, every table in
``docs/results.md`` and the headline (computed findings, the main figure, the headline table) in
``README.md``, and the README's notebook table between ``<!-- notebooks:start -->`` and
``<!-- notebooks:end -->`` (each notebook's title and its time in ``run_times.csv``).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pandas as pd

from ddlib.core import env
from ddlib.core.plots import repo_root

START, END = "<!-- results:start -->", "<!-- results:end -->"
NOTEBOOKS_START, NOTEBOOKS_END = "<!-- notebooks:start -->", "<!-- notebooks:end -->"
BENCHMARKS_START, BENCHMARKS_END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"
BENCHMARKS_DOC = Path("docs") / "benchmarks.md"
RESULTS_DOC = Path("docs") / "results.md"  # the full tables, relative to the repository
MAIN_FIGURE = "02_main_results.png"       # the README's one figure, in figures/<profile>/


def _fmt(v: object, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) >= 1 or v == 0 else f"{v:.2f}"  # shares and weights: 2 decimals
    return str(v)


# counts that a table's float column holds (a mean over seeds of equal counts): shown as integers
COUNT_COLUMNS = {"iterations"}


def _cell(value: object, column: str) -> str:
    if column in COUNT_COLUMNS and isinstance(value, float) and not pd.isna(value) and value.is_integer():
        return str(int(value))
    return _fmt(value)


def markdown_table(df: pd.DataFrame, columns: dict[str, str]) -> str:
    head = "| " + " | ".join(columns.values()) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    rows = ["| " + " | ".join(_cell(r[c], c) for c in columns) + " |" for _, r in df.astype(object).iterrows()]
    return "\n".join([head, rule, *rows])


def _provenance_line(csv: Path) -> str:
    prov_path = csv.with_suffix(".provenance.json")
    if not prov_path.exists():
        return ""
    prov = json.loads(prov_path.read_text())
    if "run_commit" in prov:  # a run-time table recorded from a reproduce.sh summary
        return f"*From the summary of `./reproduce.sh` at commit {prov['run_commit']}: {prov.get('note', '')}.*"
    commit = (prov.get("git_commit") or "?")[:8] + (" + uncommitted changes" if prov.get("uncommitted_code_changes")
                                                    else "")
    return f"*Written {prov.get('written', '?')} on {prov.get('device', '?')}, commit {commit}, torch {prov.get('torch', '?')}.*"


BIAS_ANALYSIS_COLUMNS = {"method": "set", "ipc": "IPC", "acc": "accuracy %", "± 95 %": "± 95 %", "seeds": "seeds",
                         "models per seed": "models/seed", "aligned": "aligned %", "conflicting": "conflicting %",
                         "gap": "bias gap", "paper": "paper %"}

SECTIONS: list[tuple[str, str, dict[str, str]]] = [
    ("00_ratio_summary", "The biased data sets: realised bias-conflicting counts (notebook 00)",
     {"data set": "data set", "train": "train", "train conflicting": "conflicting", "realised %": "realised %",
      "valid": "valid", "test": "test", "test aligned %": "test aligned %"}),
    # {title}: the data set's title recorded in the table (it says "JPEG copy" where that applies)
    *((f"01_bias_analysis_{name}", "Bias analysis — {title}, biased training data (notebook 01)", BIAS_ANALYSIS_COLUMNS)
      for name in ("colored_mnist", "bg_fmnist", "corrupted_cifar10", "bffhq")),
    ("01_bias_verdicts", "Amplified or reduced? The bias gap (aligned − conflicting accuracy) of each set against "
                         "random real images and the full data, Welch 95 % intervals (notebook 01)",
     {"title": "data set", "method": "set", "ipc": "IPC", "gap": "bias gap", "Δ gap vs random real": "Δ vs random real",
      "vs random real low": "low", "vs random real high": "high", "vs random real": "vs random real",
      "Δ gap vs full data": "Δ vs full data", "vs full data low": "low ", "vs full data high": "high ",
      "vs full data": "vs full data", "full data converged": "full-data networks converged"}),
    ("02_selection", "σ², τ and the surrogate's length (DM + KDE), each re-weighted method's image learning rate and "
                     "iteration count, chosen stage by stage on the validation split (notebook 02)",
     {"title": "data set", "method": "method", "stage": "stage", "σ²": "σ²", "τ": "τ",
      "surrogate epochs": "surrogate epochs", "image lr": "image lr", "iterations": "iterations", "valid acc": "valid acc %",
      "weight on conflicting": "weight on conflicting", "chosen": "chosen"}),
    ("02_main_results", "KDE + SupCon re-weighting against vanilla distillation and the competitors — main results "
                        "(notebook 02)",
     {"title": "data set", "ipc": "IPC", "label": "set", "bias labels": "reads bias labels", "acc": "accuracy %",
      "± 95 %": "± 95 %", "seeds": "seeds", "aligned": "aligned %", "conflicting": "conflicting %",
      "gain vs vanilla": "gain vs vanilla", "vs vanilla": "verdict", "image lr": "image lr", "iterations": "iterations",
      "paper": "paper %"}),
    ("02_runtime_overhead", "Runtime overhead of the method (notebook 02)",
     {"step": "step", "seconds": "seconds", "seconds per iteration": "seconds per iteration",
      "% of vanilla distillation": "% of vanilla distillation"}),
    ("03_surrogate_ablation", "Which surrogate makes the KDE weights work? DM + KDE/SupCon per surrogate variant, the "
                              "profile's default KDE settings (notebook 03)",
     {"title": "data set", "variant": "surrogate", "family": "varies", "acc": "accuracy %", "± 95 %": "± 95 %",
      "interval over": "interval over", "aligned": "aligned %", "conflicting": "conflicting %",
      "weight on conflicting": "weight on conflicting", "ESS": "ESS"}),
    ("04_full_data_validation", "Training-time de-biasing on the full biased data (notebook 04, § 1)",
     {"data set": "data set", "method": "method", "model": "model", "epochs": "epochs", "n_models": "models",
      "acc": "accuracy %", "acc ±95%": "± 95 %", "aligned": "aligned %", "conflicting": "conflicting %",
      "gain vs ERM": "gain vs ERM", "verdict vs ERM": "verdict (Welch 95 %)"}),
    ("04_synthetic_debiasing", "Training-time de-biasing on DM synthetic sets (notebook 04, § 2)",
     {"data set": "data set", "IPC": "IPC", "synthetic set": "synthetic set", "training": "trained with",
      "settings": "settings (chosen on the validation split)", "acc": "accuracy %", "acc ±95%": "± 95 %",
      "aligned": "aligned %", "conflicting": "conflicting %", "vs ERM": "vs ERM on the same sets",
      "verdict vs ERM": "verdict", "vs DM ERM": "vs ERM on the DM sets", "verdict vs DM ERM": "verdict ",
      "paper": "paper %"}),
    ("04_conflicting_share",
     "Bias-conflicting share of the sets, estimated by a bias-attribute classifier (notebook 04, § 3)",
     {"data set": "data set", "set": "set", "estimated conflicting %": "estimated conflicting %",
      "true conflicting %": "true conflicting %"}),
    ("run_times", "Run time of the whole quick job (`./reproduce.sh`)",
     {"notebook": "notebook", "seconds": "seconds", "minutes": "minutes", "status": "status"}),
]


def run_times_table(summary_text: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """The per-notebook lines of ``reproduce.sh``'s summary (``<name>  <seconds>s  ok``) as a table with
    a total row, and what the summary says about the run (``profile``, ``commit``)."""
    rows, meta = [], {}
    for line in summary_text.splitlines():
        m = re.match(r"\s*(\S+\.ipynb)\s+(\d+)s\s+(\w+)\s*$", line)
        if m:
            rows.append({"notebook": m.group(1), "seconds": int(m.group(2)), "status": m.group(3)})
            continue
        m = re.match(r"\s*(profile|commit)\s+(\S+)\s*$", line)
        if m:
            meta[m.group(1)] = m.group(2)
    if not rows:
        raise SystemExit("no '<notebook>.ipynb <seconds>s <status>' lines found in the summary")
    table = pd.DataFrame(rows)
    total = {"notebook": "all notebooks", "seconds": int(table["seconds"].sum()),
             "status": "ok" if (table["status"] == "ok").all() else "failed"}
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    table["minutes"] = (table["seconds"] / 60).round(1)
    return table, meta


def record_run_times(summary: Path, profile: str | None, note: str) -> Path:
    """Write ``figures/<profile>/run_times.csv`` (+ provenance) from a ``reproduce.sh`` summary."""
    from ddlib.core.results import save_table
    table, meta = run_times_table(summary.read_text())
    profile = profile or meta.get("profile") or "quick"
    return save_table(table, "run_times", profile, {"summary": summary.name, "run_commit": meta.get("commit"),
                                                    "note": note})


def results_markdown(profile: str) -> str:
    folder = repo_root() / "figures" / profile
    parts = [f"Measured with the `{profile}` profile; every table is written by a notebook to "
             f"`figures/{profile}/` and copied here by `python -m ddlib.tools.report --update-readme`."]
    for stem, title, columns in SECTIONS:
        csv = folder / f"{stem}.csv"
        if not csv.exists():
            continue
        df = pd.read_csv(csv)
        if "ipc" in df.columns:
            df["ipc"] = df["ipc"].map(lambda v: "—" if pd.isna(v) else str(int(v)))
        if "conflict_ratio" in df.columns:
            df["conflict_ratio"] = df["conflict_ratio"].map(lambda v: f"{100 * v:g} %")
        cols = columns or {c: c for c in df.columns}
        cols = {k: v for k, v in cols.items() if k in df.columns}
        if "{title}" in title:
            title = title.format(title=df["title"].iloc[0] if "title" in df else stem)
        reading = "" if stem not in READINGS else \
            READINGS[stem](df, folder) if stem in NEEDS_FOLDER else READINGS[stem](df)
        parts.append(f"#### {title}\n\n{markdown_table(df, cols)}\n\n{reading}{_provenance_line(csv)}")
    return "\n\n".join(parts)


def synthetic_debiasing_reading(df: pd.DataFrame) -> str:
    """One computed sentence per (data set, IPC) of notebook 04's § 2, with the notebook's own Welch verdicts:
    each training-time method on the DM sets against ERM on them, DM + KDE trained with ERM against ERM on
    the DM sets, and DM + KDE with the method chosen on the validation split against ERM on the same sets."""
    lines = []
    for (name, ipc), rows in df.groupby(["data set", "IPC"], sort=False):
        dm = rows[rows["synthetic set"] == "DM"]
        kde = rows[rows["synthetic set"] == "DM + KDE"]
        if dm.empty or kde.empty:
            continue
        erm = dm[dm["training"] == "ERM"].iloc[0]
        methods = [f"{r['training']} {r['acc']:.1f} % ({r['vs ERM']:+.1f} points: {r['verdict vs ERM']})"
                   for _, r in dm.iterrows() if r["training"] != "ERM"]
        text = (f"*Reading ({name}, IPC {ipc}):* on the DM sets ERM reaches {erm['acc']:.1f} %"
                + (f"; {'; '.join(methods)}" if methods else ""))
        k = kde[kde["training"] == "ERM"]
        if not k.empty:
            k = k.iloc[0]
            text += (f". DM + KDE trained with ERM reaches {k['acc']:.1f} % ({k['vs DM ERM']:+.1f} points against ERM "
                     f"on the DM sets: {k['verdict vs DM ERM']})")
        for _, r in kde[kde["training"] != "ERM"].iterrows():
            text += (f"; with {r['training']} (chosen on the validation split) {r['acc']:.1f} % "
                     f"({r['vs ERM']:+.1f} points against ERM on the same sets: {r['verdict vs ERM']})")
        lines.append(text + ".")
    return "".join(f"{line}\n\n" for line in lines)


def _sets(n: int) -> str:
    return f"{n} distilled set" + ("" if n == 1 else "s")


def bias_verdict_counts(df: pd.DataFrame) -> list[tuple[str, int, str]]:
    """Per data set: its title, its number of distilled sets, and how many of them amplify / reduce the bias
    beyond noise, against random real images and against the full data (from notebook 01's verdict table)."""
    out = []
    for title, rows in df[df["method"] != "random real"].groupby("title", sort=False):
        parts = []
        for ref, against in (("random real", "random real images"), ("full data", "the full data")):
            counts = rows[f"vs {ref}"].value_counts()
            parts.append(f"against {against} {counts.get('amplified', 0)} amplified, "
                         f"{counts.get('within noise', 0)} within noise, {counts.get('reduced', 0)} reduced")
        out.append((title, len(rows), "; ".join(parts)))
    return out


def bias_verdict_reading(df: pd.DataFrame) -> str:
    """Per data set, how many distilled sets amplify / reduce the bias beyond noise, against random
    real images and against the full data (computed from notebook 01's verdict table)."""
    return "".join(f"*Reading ({title}, {_sets(n)}):* {text}.\n\n" for title, n, text in bias_verdict_counts(df))


def main_results_reading(df: pd.DataFrame) -> str:
    """Per data set and method, the KDE row's gain over vanilla with its interval and verdict, and the
    competitors above it (computed from notebook 02's main table)."""
    lines = []
    for (title, method), rows in df[df["method"] != "random real"].groupby(["title", "method"], sort=False):
        kde = rows[rows["weighting"] == "KDE/SupCon"]
        vanilla = rows[rows["weighting"] == "vanilla"]
        if kde.empty or vanilla.empty:
            continue
        k = kde.iloc[0]
        above = [f"{r['weighting']} ({r['acc']:.1f} %)" for _, r in rows.iterrows()
                 if r["weighting"] not in ("vanilla", "KDE/SupCon") and r["acc"] > k["acc"]]
        lines.append(f"*Reading ({title}, {method}):* {vanilla['acc'].iloc[0]:.1f} % → {k['acc']:.1f} % with KDE/SupCon, "
                     f"gain {k['gain vs vanilla']:+.1f} points (95 % interval {k['gain low']:+.1f} to "
                     f"{k['gain high']:+.1f}: {k['vs vanilla']})"
                     + (f"; competitors above it: {', '.join(above)}." if above else
                        ("; no competitor above it." if len(rows) > 2 else ".")))
    return "".join(f"{line}\n\n" for line in lines)


def surrogate_ablation_reading(df: pd.DataFrame, folder: Path) -> str:
    """Notebook 03's two computed readings: does the weight on conflicting samples predict the accuracy
    (rank correlation), and is a surrogate trained too long worse (Welch over the replicates of
    ``03_runs.csv``)? The notebook's own functions, on the tables it saved."""
    from ddlib.experiments.surrogate_ablation import correlation_reading, length_reading
    parts = []
    if (folder / "03_rank_correlation.csv").exists():
        parts.append("*Does the weight on conflicting samples predict the accuracy?*\n\n"
                     + correlation_reading(pd.read_csv(folder / "03_rank_correlation.csv")))
    if (folder / "03_runs.csv").exists():
        parts.append("*Is a surrogate trained too long worse?*\n\n"
                     + length_reading(pd.read_csv(folder / "03_runs.csv"), df))
    return "".join(f"{p}\n\n" for p in parts)


# the computed sentences under a table: ``reading(table)`` or, where it needs the notebook's other
# tables, ``reading(table, folder)``
READINGS = {"01_bias_verdicts": bias_verdict_reading, "02_main_results": main_results_reading,
            "03_surrogate_ablation": surrogate_ablation_reading,
            "04_synthetic_debiasing": synthetic_debiasing_reading}
NEEDS_FOLDER = {"03_surrogate_ablation"}


def headline_markdown(profile: str, folder: Path | None = None) -> str:
    """The README's results: the computed findings of notebooks 01 and 02, the main figure and the headline
    table (vanilla against + KDE/SupCon per data set and method, with intervals, the paper's cell beside ours).
    Links are relative to the repository root."""
    folder = folder or repo_root() / "figures" / profile
    parts = [f"Measured with the `{profile}` profile, computed from `figures/{profile}/*.csv` by "
             f"`python -m ddlib.tools.report --update-readme`; every table, and how to read them: "
             f"[docs/results.md]({RESULTS_DOC.as_posix()})."]
    if (folder / "01_bias_verdicts.csv").exists():
        parts.append("*Bias (notebook 01): does each distilled set's bias gap (aligned − conflicting accuracy) "
                     "differ beyond noise (Welch 95 %) from that of random real images of the same size, and from "
                     "the full data's?*\n\n" + "\n".join(
                         f"- {title}, {_sets(n)}: {text}."
                         for title, n, text in bias_verdict_counts(pd.read_csv(folder / "01_bias_verdicts.csv"))))
    main = folder / "02_main_results.csv"
    if main.exists():
        df = pd.read_csv(main)
        table = headline_table(df)
        if not table.empty:
            better = int((table["verdict"] == "better").sum())
            parts.append(f"*The method (notebook 02).* KDE/SupCon re-weighting beats vanilla distillation beyond "
                         f"noise in {better} of {len(table)} (data set, method) cells; the others: "
                         + (", ".join(f"{r['data set']} {r['method']} {r['verdict']}"
                                      for _, r in table[table["verdict"] != "better"].iterrows()) or "none") + ".")
    if (folder / MAIN_FIGURE).exists():
        parts.append(f"![Main results, notebook 02](figures/{profile}/{MAIN_FIGURE})")
    if main.exists() and not table.empty:
        parts.append(markdown_table(table, {c: c for c in table.columns}) + "\n\n" + _provenance_line(main))
    return "\n\n".join(parts)


def headline_table(df: pd.DataFrame) -> pd.DataFrame:
    """Notebook 02's key rows: per data set and method, vanilla and + KDE/SupCon with their 95 % intervals,
    the gain with its interval and verdict, and the paper's vanilla → + KDE/SupCon where it reports the cell."""
    from ddlib.reference import PAPER, REPORTED
    rows = []
    for (title, method), group in df[df["method"] != "random real"].groupby(["title", "method"], sort=False):
        kde, vanilla = group[group["weighting"] == "KDE/SupCon"], group[group["weighting"] == "vanilla"]
        if kde.empty or vanilla.empty:
            continue
        k, v = kde.iloc[0], vanilla.iloc[0]
        paper = {r.method: r for r in REPORTED if r.source == PAPER and r.dataset == k["dataset"]
                 and abs(r.conflict_ratio - k["conflict_ratio"]) < 1e-9 and r.method in (method, f"{method} + KDE/SupCon")}
        cell = "—"
        if len(paper) == 2:
            a, b = paper[method], paper[f"{method} + KDE/SupCon"]
            cell = f"{_fmt(a.accuracy)} → {_fmt(b.accuracy)} (IPC {b.ipc})"
        rows.append({"data set": title, "bias-conflicting": f"{100 * k['conflict_ratio']:g} %",
                     "IPC": str(int(k["ipc"])), "method": method,
                     "vanilla %": f"{_fmt(v['acc'])} ± {_fmt(v['± 95 %'])}",
                     "+ KDE/SupCon %": f"{_fmt(k['acc'])} ± {_fmt(k['± 95 %'])}",
                     "gain, points [95 %]": f"{k['gain vs vanilla']:+.1f} [{k['gain low']:+.1f}, {k['gain high']:+.1f}]",
                     "verdict": k["vs vanilla"], "paper %, vanilla → + KDE/SupCon": cell})
    return pd.DataFrame(rows)


def notebooks_markdown(profile: str, root: Path | None = None) -> str:
    """The README's notebook table: each notebook's own title (its first heading), its time in the
    ``{profile}`` run-time table, a link to it."""
    root = root or repo_root()
    times = root / "figures" / profile / "run_times.csv"
    minutes = {}
    if times.exists():
        minutes = dict(pd.read_csv(times)[["notebook", "minutes"]].itertuples(index=False, name=None))
    rows = []
    for nb in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(nb.read_text()).get("cells", [])
        heading = next((line.lstrip("#").strip() for c in cells if c.get("cell_type") == "markdown"
                        for line in "".join(c.get("source", "")).splitlines() if line.startswith("# ")), nb.stem)
        what = heading.split(" · ", 1)[-1]
        rows.append({"notebook": f"[{nb.name}](notebooks/{nb.name})", "what it reproduces": what,
                     f"{profile} run (min)": _fmt(float(minutes[nb.name])) if nb.name in minutes else "—"})
    table = markdown_table(pd.DataFrame(rows), {c: c for c in rows[0]}) if rows else ""
    note = (f"\n\nRun times: one run of every notebook from an empty cache (`figures/{profile}/run_times.csv`; how "
            f"and where: [docs/results.md]({RESULTS_DOC.as_posix()}#run-time-of-the-whole-quick-job-reproducesh)); "
            f"all notebooks: "
            f"{_fmt(float(minutes['all notebooks']))} min." if "all notebooks" in minutes else "")
    return table + note


def benchmarks_markdown(root: Path | None = None) -> str:
    """``docs/benchmarks.md``'s table of DC, DSA, DM and MTT: ms per iteration per data set and the peak
    memory, from the tables ``python -m ddlib.tools.benchmark_methods --save`` wrote, each with its command
    and provenance."""
    from ddlib.tools.benchmark_methods import SAVED_FOLDER, SAVED_PREFIX
    root = root or repo_root()
    files = sorted((root / "figures" / SAVED_FOLDER).glob(f"{SAVED_PREFIX}*.csv"))
    if not files:
        return "*No saved benchmark yet: run `python -m ddlib.tools.benchmark_methods --save`.*"
    frames = [pd.read_csv(f) for f in files]
    df = pd.concat(frames, ignore_index=True)
    order = list(dict.fromkeys(df["method"]))
    wide = df.pivot_table(index="method", columns="dataset", values="ms_per_iteration", sort=False).reindex(order)
    table = pd.DataFrame({"method": wide.index})
    for dataset in dict.fromkeys(df["dataset"]):
        table[f"{dataset} ms/it"] = [f"{v:.0f}" for v in wide[dataset]]
    peaks = df.groupby("method", sort=False)["peak_mb"]
    table["peak memory (MB)"] = [f"{lo:.0f}–{hi:.0f}" if round(lo) != round(hi) else f"{lo:.0f}"
                                 for lo, hi in zip(peaks.min().reindex(order), peaks.max().reindex(order))]
    lines = [markdown_table(table, {c: c for c in table.columns}),
             f"Peak memory: {', '.join(sorted(set(df['memory'])))}; IPC {', '.join(map(str, sorted(set(df['ipc']))))}, "
             f"profile {', '.join(sorted(set(df['profile'])))}."]
    for f in files:
        prov = json.loads(f.with_suffix(".provenance.json").read_text())
        machine = f"{prov['cpu']}, {prov.get('cpu_count', '?')} cores, " if "cpu" in prov else ""
        lines.append(f"`{prov.get('command', '?')}` ({machine}{prov.get('threads', '?')} torch threads): "
                     + _provenance_line(f))
    return "\n\n".join(lines)


def _replace(path: Path, start: str, end: str, body: str) -> None:
    text = path.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{path} lacks the markers {start} … {end}")
    path.write_text(re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: f"{start}\n{body}\n{end}", text,
                           flags=re.S))


def update_readme(profile: str) -> list[Path]:
    """Regenerate the full tables in ``docs/results.md`` and the headline and notebook table in the README."""
    root = repo_root()
    readme, results = root / "README.md", root / RESULTS_DOC
    _replace(results, START, END, results_markdown(profile))
    _replace(readme, START, END, headline_markdown(profile))
    _replace(readme, NOTEBOOKS_START, NOTEBOOKS_END, notebooks_markdown(profile))
    benchmarks = root / BENCHMARKS_DOC
    _replace(benchmarks, BENCHMARKS_START, BENCHMARKS_END, benchmarks_markdown(root))
    return [readme, results, benchmarks]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default=None, help="default: quick (for --run-times: the summary's profile)")
    parser.add_argument("--update-readme", action="store_true")
    parser.add_argument("--run-times", type=Path,
                        help="record a reproduce.sh summary as figures/<profile>/run_times.csv")
    parser.add_argument("--note", default="", help="with --run-times: how the run was made (cache, machine)")
    args = parser.parse_args(argv)
    env.absolutize_at_entry("python -m ddlib.tools.report")
    if args.run_times:
        print(f"wrote {record_run_times(args.run_times, args.profile, args.note)}")
    elif args.update_readme:
        print("updated " + ", ".join(str(p) for p in update_readme(args.profile or "quick")))
    else:
        print(results_markdown(args.profile or "quick"))


if __name__ == "__main__":
    main()
