"""Shared fixtures: the repository layout, the chapter list and one book build."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from scalingkit import book

ROOT = Path(__file__).resolve().parents[1]


def one_line_error(capsys, argv, status, *fragments) -> str:
    """Run the CLI; check the exit status and a single 'error:' line naming the problem.

    Returns that line. Every fragment must appear in it, and no traceback anywhere.
    """
    from scalingkit import cli

    assert cli.main(argv) == status
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def toc_files() -> list[str]:
    """Every document listed in ``_toc.yml`` (root first), as paths without suffix."""
    return book.toc_documents(ROOT)


def chapter_files() -> list[Path]:
    """The executable chapters: toc documents that carry a jupytext kernel header."""
    return book.chapter_paths(ROOT)


@pytest.fixture(scope="session")
def book_build(tmp_path_factory) -> tuple[Path, str]:
    """Build the book once per test session with warnings as errors.

    Returns the HTML folder and the build log. The build runs exactly as a
    reader would run it, plus ``-W -n --keep-going`` so that any warning or
    failing cell fails the build.
    """
    out = tmp_path_factory.mktemp("book")
    proc = subprocess.run(
        [
            shutil.which("jupyter-book") or "jupyter-book", "build", str(ROOT),
            "--path-output", str(out), "-W", "-n", "--keep-going",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"book build failed:\n{log[-8000:]}"
    return out / "_build" / "html", log


@pytest.fixture(scope="session")
def exported_notebooks(tmp_path_factory) -> Path:
    """The chapters exported once with ``python -m scalingkit notebooks``."""
    out = tmp_path_factory.mktemp("notebooks")
    subprocess.run(["python", "-m", "scalingkit", "notebooks", "--out", str(out)],
                   check=True, capture_output=True, cwd=ROOT)
    return out
