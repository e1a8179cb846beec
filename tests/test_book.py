"""The book builds with warnings as errors, its pages hold what readers need, and
every chapter, exported as a course notebook, executes under nbval."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
import yaml
from bs4 import BeautifulSoup
from conftest import ROOT, chapter_files, toc_files

from scalingkit import book

pytestmark = pytest.mark.slow


def _soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(), "html.parser")


def test_toc_lists_existing_documents():
    for name in toc_files():
        assert (ROOT / f"{name}.md").exists() or (ROOT / f"{name}.ipynb").exists(), name


def test_build_is_clean(book_build):
    _, log = book_build
    # Sphinx writes "file:line: WARNING: ..."; the Jupyter kernel's own log lines
    # ("[IPKernelApp] WARNING | ...") are not build warnings.
    sphinx_warnings = [line for line in log.splitlines() if "WARNING:" in line]
    assert not sphinx_warnings, sphinx_warnings[:10]
    assert "build succeeded" in log


def test_every_chapter_page_is_built(book_build):
    html, _ = book_build
    for name in toc_files():
        assert (html / f"{name}.html").exists(), f"missing page for {name}"


def test_chapters_have_numbered_captioned_figures(book_build):
    html, _ = book_build
    for path in chapter_files():
        soup = _soup(html / path.relative_to(ROOT).with_suffix(".html"))
        figures = soup.select("figure")
        assert figures, f"{path.name} has no figure"
        caption = figures[0].find("figcaption")
        assert caption is not None and "Fig." in caption.get_text(), path.name
        assert figures[0].find("img") is not None


#: ``{glue}`name``, ``{glue:text}`name:.3f``` and the like: the name before any format.
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([A-Za-z_]\w*)")
#: ``glue("name", ...)`` in a code cell.
GLUE_CALL = re.compile(r"""\bglue\(\s*["']([A-Za-z_]\w*)["']""")


def test_glued_names_are_glued_on_their_own_page():
    """Every number a chapter's prose inserts with a glue role is glued by that
    chapter's code (myst-nb resolves glue per page), and every glued name is used.
    Reads the .md sources only, so it runs without the build."""
    checked = 0
    for path in chapter_files():
        text = path.read_text()
        used, glued = set(GLUE_ROLE.findall(text)), set(GLUE_CALL.findall(text))
        assert used <= glued, f"{path.name}: never glued: {sorted(used - glued)}"
        assert glued <= used, f"{path.name}: glued but not shown: {sorted(glued - used)}"
        if glued:
            assert "from myst_nb import glue" in text, f"{path.name}: glue is not imported"
        checked += bool(glued)
    assert checked >= 5  # the chapters that glue numbers into their prose


def test_chapters_open_with_goals_and_close_with_exercises():
    for path in chapter_files():
        text = path.read_text()
        assert "Learning goals" in text, path.name
        assert "## Exercises" in text, path.name
        assert "hide-cell" in text or ":class: dropdown" in text, f"{path.name}: no solutions"
        assert "QUICK = True" in text, f"{path.name}: no QUICK switch"


def _numbered_chapters() -> list[Path]:
    """The documents of the numbered "Chapters" part of ``_toc.yml``, in order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    parts = [p for p in toc["parts"] if p.get("caption") == "Chapters"]
    assert len(parts) == 1 and parts[0].get("numbered"), "no numbered 'Chapters' part"
    return [ROOT / f"{c['file']}.md" for c in parts[0]["chapters"]]


def test_every_chapter_has_a_summary_before_its_exercises():
    """Issue #23: each numbered chapter ends with what to remember, then exercises."""
    chapters = _numbered_chapters()
    assert len(chapters) >= 10
    for path in chapters:
        headings = re.findall(r"^## (.+?)\s*$", path.read_text(), flags=re.MULTILINE)
        assert "Summary" in headings, f"{path.name}: no '## Summary'"
        assert "Exercises" in headings, f"{path.name}: no '## Exercises'"
        assert headings.index("Summary") < headings.index("Exercises"), (
            f"{path.name}: '## Summary' must come before '## Exercises'")


def test_internal_links_resolve(book_build):
    html, _ = book_build
    pages = sorted(html.rglob("*.html"))
    ids = {p: {t["id"] for t in _soup(p).find_all(id=True)} for p in pages}
    broken = []
    for page in pages:
        for a in _soup(page).find_all("a", href=True):
            url = urlparse(a["href"])
            if url.scheme or url.netloc or a["href"].startswith("mailto:"):
                continue
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            if not target.exists():
                broken.append(f"{page.name} -> {a['href']}")
            elif url.fragment and target.suffix == ".html" and url.fragment not in ids.get(
                target, {t["id"] for t in _soup(target).find_all(id=True)}
            ):
                broken.append(f"{page.name} -> {a['href']} (no anchor)")
    assert not broken, broken[:20]


def test_pages_show_no_stderr_and_no_path_of_the_build_machine(book_build):
    """What a reader sees: no stderr block (library noise, warnings with file paths)
    and no path of the machine that built the book; chapters say in their own words
    what a reader should know (failed resamples, extrapolated minima)."""
    html, _ = book_build
    # Anywhere in the page: the repository's and the home folder's absolute paths.
    # In cell outputs also temporary folders (prose may name /tmp in a shell example).
    page_paths = {str(ROOT), str(Path.home()) + "/"}
    output_paths = page_paths | {"/tmp/", tempfile.gettempdir() + "/"}
    problems = []
    for name in toc_files():
        page = html / f"{name}.html"
        soup = _soup(page)
        for node in soup.find_all(class_=lambda c: c is not None and "stderr" in c):
            problems.append(f"{name}: stderr block {node.get_text()[:160]!r}")
        text = page.read_text()
        outputs = "\n".join(str(node) for node in soup.select(".cell_output"))
        problems += [f"{name}: shows the path {p!r}" for p in sorted(page_paths) if p in text]
        problems += [f"{name}: an output shows the path {p!r}"
                     for p in sorted(output_paths - page_paths) if p in outputs]
    assert not problems, problems[:20]


def test_bibliography_is_rendered(book_build):
    html, _ = book_build
    soup = _soup(html / "book" / "bibliography.html")
    assert len(soup.select("div.citation")) >= 4


def test_exported_notebooks_are_clean(exported_notebooks):
    url = book.repository_url(ROOT)
    names = sorted(p.stem for p in exported_notebooks.glob("*.ipynb"))
    assert names == sorted(p.stem for p in chapter_files())
    for path in exported_notebooks.glob("*.ipynb"):
        nb = json.loads(path.read_text())
        first = "".join(nb["cells"][0]["source"])
        assert f"git+{url}" in first and "find_spec" in first
        for cell in nb["cells"]:
            assert not cell.get("outputs"), f"{path.name} has stored outputs"
    assert (exported_notebooks / "data").is_dir()


@pytest.mark.parametrize("chapter", chapter_files(), ids=lambda p: p.stem)
def test_chapter_executes_under_nbval(chapter: Path, exported_notebooks: Path):
    """Run the exported course notebook with ``pytest --nbval-lax``.

    The kernel's working folder is the export folder, which holds a copy of
    ``book/data``, so relative paths resolve as they do in the book build.
    """
    notebook = exported_notebooks / f"{chapter.stem}.ipynb"
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
         "--rootdir", str(exported_notebooks), str(notebook)],
        capture_output=True, text=True, cwd=exported_notebooks, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
