"""The book builds with warnings as errors, and every chapter executes under nbval."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
from bs4 import BeautifulSoup
from conftest import ROOT, chapter_files, toc_files

pytestmark = pytest.mark.slow


def test_toc_lists_existing_documents():
    for name in toc_files():
        assert (ROOT / f"{name}.md").exists() or (ROOT / f"{name}.ipynb").exists(), name


def test_every_chapter_page_is_built(book_build):
    html, _ = book_build
    for name in toc_files():
        assert (html / f"{name}.html").exists(), f"missing page for {name}"


def test_chapters_have_a_figure(book_build):
    html, _ = book_build
    for path in chapter_files():
        page = html / path.relative_to(ROOT).with_suffix(".html")
        soup = BeautifulSoup(page.read_text(), "html.parser")
        assert soup.find("img") is not None, f"{page.name} has no figure"


def test_bibliography_is_rendered(book_build):
    html, _ = book_build
    soup = BeautifulSoup((html / "book" / "bibliography.html").read_text(), "html.parser")
    entries = soup.select("div.citation, dl.citation > dt, .bibliography li, dl.bibliography dt")
    assert len(entries) >= 4


@pytest.mark.parametrize("chapter", chapter_files(), ids=lambda p: p.stem)
def test_chapter_executes_under_nbval(chapter: Path, tmp_path: Path):
    """Convert the MyST chapter to .ipynb and run it with ``pytest --nbval-lax``.

    The notebook is written next to a link to ``book/data`` so that relative
    paths resolve exactly as they do in the book build.
    """
    work = tmp_path / "book"
    work.mkdir()
    (work / "data").symlink_to(ROOT / "book" / "data")
    notebook = work / f"{chapter.stem}.ipynb"
    jupytext.write(jupytext.read(chapter), notebook)
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
         "--rootdir", str(tmp_path), str(notebook)],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
