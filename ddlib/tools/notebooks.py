"""Tidying executed notebooks before they are committed.

Progress bars write carriage returns; a live Jupyter front end redraws the line, but the stored
output keeps every intermediate state, which makes executed notebooks megabytes of progress
lines on GitHub. :func:`collapse_progress` keeps, for every line, only what a terminal would show
(the text after its last carriage return), and drops papermill's injected-parameters cell so that
the committed notebook reads its profile from ``$DDLIB_PROFILE`` again (nbval reruns it in smoke).

    python -m ddlib.tools.notebooks notebooks/01_bias_analysis.ipynb [...]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import nbformat


def collapse_carriage_returns(text: str) -> str:
    lines = []
    for line in text.split("\n"):
        parts = [p for p in line.split("\r") if p.strip()]
        lines.append(parts[-1] if parts else "")
    # drop the empty lines that only separated collapsed progress states
    out = [line for i, line in enumerate(lines) if line or (i and lines[i - 1])]
    return "\n".join(out)


_BAR = re.compile(r"^(?P<desc>.*?):\s+\d+%\|")


def final_bar_states(text: str) -> str:
    """Keep only the last state of every progress bar (a run of lines with the same description)."""
    lines = [line for line in text.split("\n") if line.strip()]
    kept = []
    for i, line in enumerate(lines):
        match = _BAR.match(line)
        if match:
            following = _BAR.match(lines[i + 1]) if i + 1 < len(lines) else None
            if following and following.group("desc") == match.group("desc"):
                continue
        kept.append(line)
    return "\n".join(kept) + ("\n" if kept else "")


def collapse_progress(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged: list = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream" \
                    and merged[-1]["name"] == output["name"]:
                merged[-1]["text"] += "\n" + output["text"]
            else:
                merged.append(output)
        for output in merged:
            if output.get("output_type") == "stream":
                output["text"] = final_bar_states(collapse_carriage_returns(output["text"]))
        cell["outputs"] = [o for o in merged if o.get("output_type") != "stream" or o["text"].strip()]
    return nb


def tidy(path: Path) -> tuple[int, int]:
    """Tidy the notebook at ``path`` in place; returns its size before and after (bytes)."""
    before = path.stat().st_size
    nb = collapse_progress(nbformat.read(path, as_version=4))
    nbformat.write(nb, path)
    return before, path.stat().st_size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ddlib.tools.notebooks",
                                     description="Tidy executed notebooks in place before they are committed "
                                                 "(progress lines collapsed, papermill's parameters cell dropped).")
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.notebooks if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    for name in args.notebooks:
        before, after = tidy(name)
        print(f"{name}: {before / 1024:.0f} KiB → {after / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
