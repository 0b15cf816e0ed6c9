"""The README front page and the manuals in ``docs/``: every relative link and image resolves, every
``#anchor`` names a heading (GitHub's slug rules), the README stays a short front page that shows the main
figure and the headline table, and the generated sections are what ``ddlib.tools.report`` writes now."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 200

FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[([^\]\n]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _prose(text: str) -> str:
    """The text without fenced code blocks (whose '#' lines are no headings and whose brackets no links)."""
    return FENCE.sub("", text)


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text (code spans, emphasis and links reduced to their text),
    lower-cased, punctuation removed except '-' and '_', each space a '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").replace("*", "").strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in "-_ ")
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor in ``page``; a repeated heading gets -1, -2, … as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    for line in _prose(page.read_text()).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = github_slug(m.group(1))
        n = seen.get(slug, 0)
        out.add(slug if n == 0 else f"{slug}-{n}")
        seen[slug] = n + 1
    return out


def links(page: Path) -> list[str]:
    prose = INLINE_CODE.sub("code", _prose(page.read_text()))
    return [m.group(2) for m in LINK.finditer(prose)]


def test_github_slug_rules():
    assert github_slug("Run time of the whole quick job (`./reproduce.sh`)") == \
        "run-time-of-the-whole-quick-job-reproducesh"
    assert github_slug("Choices that are ours") == "choices-that-are-ours"
    assert github_slug("Training-time de-biasing (notebook 04)") == "training-time-de-biasing-notebook-04"
    assert github_slug("What is ours, what is the paper's") == "what-is-ours-what-is-the-papers"


def test_duplicate_headings_get_numbered_anchors(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# A\n\n## Notes\n\n```bash\n# not a heading\n```\n\n## Notes\n\n## Notes\n")
    assert anchors(page) == {"a", "notes", "notes-1", "notes-2"}


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: …: not checked offline
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading with anchor #{anchor} in {file.name}")
    return broken


def test_broken_links_and_anchors_are_found(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("# B\n\n## Two words\n")
    page = tmp_path / "a.md"
    page.write_text("# A\n\n[ok](docs/b.md#two-words) [self](#a) [web](https://example.org/x#y) `[code](nope.md)`\n"
                    "[gone](docs/c.md) [bad](docs/b.md#two_words) ![img](fig.png) [me](#b)\n")
    assert [b.split(":")[0] for b in broken_links(page)] == ["docs/c.md", "docs/b.md#two_words", "fig.png", "#b"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_and_anchor_resolves(page):
    broken = broken_links(page)
    assert not broken, "\n".join(broken)


def test_every_manual_in_docs_is_linked_from_the_readme():
    readme_links = {Path(t.partition("#")[0]) for t in links(ROOT / "README.md")}
    docs = {p.relative_to(ROOT) for p in (ROOT / "docs").glob("*.md")}
    assert docs and docs <= readme_links, sorted(map(str, docs - readme_links))
    for doc in docs:  # and each leads back to it
        assert "../README.md" in links(ROOT / doc), doc


def test_readme_is_a_short_front_page_with_the_figure_and_the_headline_table():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    assert "](figures/quick/02_main_results.png)" in text
    block = text.split("<!-- results:start -->", 1)[1].split("<!-- results:end -->", 1)[0]
    assert "| data set |" in block and "paper %" in block and "DM + KDE/SupCon" not in block.split("|")[0]
    # the two commands the tests and .ci/run rely on, exactly
    assert "./reproduce.sh            # set up .venv, then run every notebook in the quick profile (CPU)\n" in text
    assert "./reproduce.sh --tests    # set up .venv with test extras, run the tests and the notebooks under nbval\n" \
        in text


def test_generated_sections_are_what_the_report_writes_now():
    """README.md and docs/results.md hold exactly the current output of the report tool (else run
    ``python -m ddlib.tools.report --profile quick --update-readme``)."""
    from ddlib.tools.report import (END, NOTEBOOKS_END, NOTEBOOKS_START, START, headline_markdown,
                                    notebooks_markdown, results_markdown)

    def block(path: Path, start: str, end: str) -> str:
        text = path.read_text()
        assert text.count(start) == 1 and text.count(end) == 1, (path, start)
        return text.split(start, 1)[1].split(end, 1)[0].strip("\n")

    hint = "stale: run python -m ddlib.tools.report --profile quick --update-readme"
    assert block(ROOT / "README.md", START, END) == headline_markdown("quick"), hint
    assert block(ROOT / "README.md", NOTEBOOKS_START, NOTEBOOKS_END) == notebooks_markdown("quick"), hint
    assert block(ROOT / "docs" / "results.md", START, END) == results_markdown("quick"), hint
    from ddlib.tools.report import BENCHMARKS_END, BENCHMARKS_START, benchmarks_markdown
    assert block(ROOT / "docs" / "benchmarks.md", BENCHMARKS_START, BENCHMARKS_END) == benchmarks_markdown(), hint


def test_benchmark_table_is_built_from_the_saved_tables(tmp_path):
    """Two saved benchmark tables become one row per method, a column per data set, the peak memory's
    range over the data sets, and each table's command and commit."""
    import json

    import pandas as pd

    from ddlib.tools.report import benchmarks_markdown
    folder = tmp_path / "figures" / "benchmarks"
    folder.mkdir(parents=True)
    for name, title, ms, peak in (("a", "Set A", (2000.4, 99.6), (1000.2, 900.0)),
                                  ("b", "Set B", (1500.0, 120.0), (1100.0, 900.4))):
        pd.DataFrame({"method": ["DC", "DM"], "dataset": [title] * 2, "ipc": [10, 10], "profile": ["quick"] * 2,
                      "ms_per_iteration": ms, "peak_mb": peak, "memory": ["peak RSS during the run"] * 2}
                     ).to_csv(folder / f"benchmark_methods_{name}.csv", index=False)
        (folder / f"benchmark_methods_{name}.provenance.json").write_text(json.dumps(
            {"command": f"python -m ddlib.tools.benchmark_methods --dataset {name} --save", "threads": 2,
             "git_commit": "0123456789abcdef", "written": "T", "device": "cpu", "torch": "2.x",
             "cpu": "Some CPU", "cpu_count": 2}))
    text = benchmarks_markdown(tmp_path)
    assert "| method | Set A ms/it | Set B ms/it | peak memory (MB) |" in text
    assert "| DC | 2000 | 1500 | 1000–1100 |" in text and "| DM | 100 | 120 | 900 |" in text
    assert "--dataset b --save` (Some CPU, 2 cores, 2 torch threads)" in text and "commit 01234567" in text
    assert "No saved benchmark" in benchmarks_markdown(tmp_path / "empty")


def test_readme_renders_with_the_figure_and_tables():
    mistune = pytest.importorskip("mistune")
    html = mistune.create_markdown(plugins=["table"])((ROOT / "README.md").read_text())
    images = re.findall(r'<img src="([^"]+)"', html)
    assert images == ["figures/quick/02_main_results.png"] and all((ROOT / i).exists() for i in images)
    assert html.count("<table>") == 3  # the headline table, the notebooks, the manuals
