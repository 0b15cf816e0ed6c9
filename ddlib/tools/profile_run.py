"""Where a run's time went, read from its cache: seconds per kind of artifact, per process.

Every cached artifact records in ``meta.json`` when its builder took the artifact's lock and when it
committed (:func:`ddlib.core.cache.build_record`). A run from an empty cache therefore leaves its
own profile behind: this command sums those build times by kind (data sets, surrogates, synthetic
sets per method, expert trajectories, error sets, evaluations of synthetic sets, full-data
training, ...) and, given the run's notebook times (``reproduce.sh``'s ``run_times.csv``), the
remainder that no artifact accounts for (kernel start, uncached work such as KDE weights,
diagnostics, tables, figures)::

    DDLIB_CACHE=/tmp/cold ./reproduce.sh --in-place            # a run from an empty cache
    python -m ddlib.tools.profile_run --cache /tmp/cold --run-times figures/quick/run_times.csv

A build that needed another artifact and built it inside its own lock (a synthetic set whose
distillation trained a surrogate first) contains that build's time; each artifact is charged only
its *own* time (its interval minus the intervals of the builds nested in it in the same process),
so the kinds add up to the wall time they cover. Artifacts loaded from an earlier cache are not
built and cost nothing here: profile a cold run.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ddlib.core import env
from ddlib.core.cache import META_FILE, cache_root


@dataclass(frozen=True)
class Build:
    """One artifact's build: its kind, a label (the method of a synthetic set or evaluation), its
    interval (wall-clock seconds since the epoch) and the process that built it."""

    kind: str
    label: str
    started: float
    finished: float
    pid: int

    @property
    def seconds(self) -> float:
        return self.finished - self.started


def _label(meta: dict) -> str:
    kind, prov = meta.get("kind", "?"), meta.get("provenance") or {}
    if kind == "evaluations/synthetic" and prov.get("method"):
        return f"{kind} ({prov['method']})"
    return kind


def read_builds(root: Path) -> tuple[list[Build], int]:
    """Every artifact under ``root`` with a known build interval, and how many had none (written by
    code before build times were recorded, or committed without a lock)."""
    builds, unknown = [], 0
    for meta_path in sorted(root.rglob(META_FILE)):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            unknown += 1
            continue
        record = meta.get("build") or {}
        if record.get("started") is None or record.get("finished") is None:
            unknown += 1
            continue
        builds.append(Build(meta.get("kind", "?"), _label(meta), float(record["started"]),
                            float(record["finished"]), int(record.get("pid", -1))))
    return builds, unknown


def own_seconds(builds: list[Build]) -> list[float]:
    """Each build's interval minus the union of the intervals of the builds directly nested in it
    (same process, inside its interval): the time spent in that build itself."""
    order = sorted(range(len(builds)), key=lambda i: (builds[i].pid, builds[i].started, -builds[i].finished))
    own = [b.seconds for b in builds]
    stack: list[int] = []  # open builds of the current process, outermost first
    for i in order:
        b = builds[i]
        while stack and (builds[stack[-1]].pid != b.pid or builds[stack[-1]].finished <= b.started):
            stack.pop()
        if stack and b.finished <= builds[stack[-1]].finished:
            own[stack[-1]] -= b.seconds  # a direct child: its time is its own, not its parent's
        stack.append(i)
    return [max(s, 0.0) for s in own]


def profile_table(builds: list[Build], total_seconds: float | None = None) -> pd.DataFrame:
    """Seconds of own build time per label (kind), with counts and shares of ``total_seconds`` (the
    run's wall time; None: of the summed build time). With a total, a last-but-one row holds what no
    artifact accounts for."""
    own = own_seconds(builds)
    frame = pd.DataFrame({"what": [b.label for b in builds], "seconds": own})
    table = frame.groupby("what").agg(builds=("seconds", "size"), seconds=("seconds", "sum"))
    table = table.sort_values("seconds", ascending=False).reset_index()
    covered = float(table["seconds"].sum())
    if total_seconds is not None:
        rest = pd.DataFrame([{"what": "not in any artifact (kernels, KDE weights, tables, figures, ...)",
                              "builds": 0, "seconds": max(total_seconds - covered, 0.0)}])
        table = pd.concat([table, rest], ignore_index=True)
    denominator = total_seconds if total_seconds is not None else covered
    total_row = pd.DataFrame([{"what": "total", "builds": int(table["builds"].sum()),
                               "seconds": denominator}])
    table = pd.concat([table, total_row], ignore_index=True)
    table["% of run"] = 100 * table["seconds"] / denominator if denominator else float("nan")
    table["seconds"] = table["seconds"].round(1)
    table["% of run"] = table["% of run"].round(1)
    return table


def per_process_table(builds: list[Build], notebooks: list[str] | None = None) -> pd.DataFrame:
    """Own build seconds per process and kind; processes in the order they started, named after
    ``notebooks`` (reproduce.sh runs one kernel per notebook, in order) when the counts agree."""
    own = own_seconds(builds)
    first: dict[int, float] = {}
    for b in builds:
        first[b.pid] = min(first.get(b.pid, b.started), b.started)
    pids = sorted(first, key=first.get)
    names = dict(zip(pids, notebooks)) if notebooks and len(notebooks) == len(pids) else \
        {pid: f"process {k + 1} (pid {pid})" for k, pid in enumerate(pids)}
    frame = pd.DataFrame({"process": [names[b.pid] for b in builds], "what": [b.label for b in builds],
                          "seconds": own})
    table = frame.pivot_table(index="what", columns="process", values="seconds", aggfunc="sum", fill_value=0.0)
    table = table[[names[p] for p in pids]]
    return table.round(1)


def _run_times(path: Path) -> tuple[float | None, list[str] | None]:
    if not path.exists():
        raise SystemExit(f"no run-time table at {path}; pass the run_times.csv that reproduce.sh wrote for "
                         "this run (or leave --run-times out)")
    times = pd.read_csv(path)
    if not {"notebook", "seconds"} <= set(times.columns):
        raise SystemExit(f"{path} has no 'notebook' and 'seconds' columns: not a run-time table of reproduce.sh")
    rows = times[times["notebook"].str.endswith(".ipynb")]
    return float(rows["seconds"].sum()), list(rows["notebook"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=None, help="the run's cache folder (default: $DDLIB_CACHE)")
    parser.add_argument("--run-times", type=Path, default=None,
                        help="reproduce.sh's run_times.csv of the same run: adds the unaccounted remainder")
    args = parser.parse_args(argv)
    env.absolutize_at_entry("python -m ddlib.tools.profile_run")
    root = args.cache if args.cache is not None else cache_root()
    if not root.is_dir():
        raise SystemExit(f"no cache folder at {root}; pass --cache with the folder the run wrote")
    builds, unknown = read_builds(root)
    if not builds:
        raise SystemExit(f"no artifact under {root} records its build time: profile a run made from an empty "
                         "cache with this version of ddlib")
    total, notebooks = _run_times(args.run_times) if args.run_times else (None, None)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.max_colwidth", 70):
        print(f"cache {root}: {len(builds)} artifacts built"
              + (f" ({unknown} without a build time, left out)" if unknown else ""))
        print(profile_table(builds, total).to_string(index=False))
        print()
        print(per_process_table(builds, notebooks).to_string())


if __name__ == "__main__":
    main()
