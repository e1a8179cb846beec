"""The book as files: chapter discovery and export to course notebooks.

Chapters are MyST markdown notebooks listed in ``_toc.yml``. For course use,
:func:`export_notebooks` writes each chapter as a clean ``.ipynb`` (no
outputs) whose first cell installs ``scalingkit`` from the repository named in
``_config.yml`` when the package is missing, next to a copy of ``book/data``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["find_book_root", "toc_documents", "chapter_paths", "repository_url",
           "install_cell_source", "export_notebooks"]


def find_book_root(start: str | Path | None = None) -> Path:
    """Return the repository root holding ``_config.yml`` and ``_toc.yml``.

    Looks at ``start`` (default: the current folder) and its parents, then
    at the folder above the installed package (an editable install).

    Raises
    ------
    ValueError
        If no folder with both files is found.
    """
    candidates = []
    here = Path(start or Path.cwd()).resolve()
    candidates += [here, *here.parents]
    candidates.append(Path(__file__).resolve().parents[1])
    for folder in candidates:
        if (folder / "_toc.yml").is_file() and (folder / "_config.yml").is_file():
            return folder
    raise ValueError(
        f"no book found: neither {here} nor its parents hold _config.yml and _toc.yml; "
        "run from the repository or pass --book-root"
    )


def _yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text()) or {}


def toc_documents(root: Path) -> list[str]:
    """Documents listed in ``_toc.yml`` in reading order, as paths without suffix."""
    toc = _yaml(Path(root) / "_toc.yml")
    docs = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            docs.append(chapter["file"])
            docs.extend(section["file"] for section in chapter.get("sections", []))
    return docs


def chapter_paths(root: Path) -> list[Path]:
    """The executable chapters: listed documents whose header declares a kernel."""
    out = []
    for doc in toc_documents(root):
        path = Path(root) / f"{doc}.md"
        text = path.read_text() if path.is_file() else ""
        if text.startswith("---") and "kernelspec:" in text.split("---", 2)[1]:
            out.append(path)
    return out


def repository_url(root: Path) -> str:
    """The repository URL set once in ``_config.yml`` (``repository.url``)."""
    url = (_yaml(Path(root) / "_config.yml").get("repository") or {}).get("url")
    if not url:
        raise ValueError("_config.yml has no repository.url")
    return str(url)


def install_cell_source(url: str) -> str:
    """Source of the first cell of an exported notebook."""
    return (
        "# Install scalingkit when this notebook runs outside the repository\n"
        "# (a fresh Colab or course machine); a no-op where it is installed.\n"
        "import importlib.util\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        'if importlib.util.find_spec("scalingkit") is None:\n'
        f'    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "git+{url}"])'
    )


def export_notebooks(out: str | Path, root: str | Path | None = None) -> list[Path]:
    """Write every chapter as a clean ``.ipynb`` into ``out``; return their paths.

    Outputs are stripped, the first cell installs the package if missing, and
    ``book/data`` is copied to ``out/data`` so the chapters' relative paths
    resolve.

    Raises
    ------
    ValueError
        If ``out`` exists and is not a folder, or cannot be written.
    """
    import jupytext
    from nbformat.v4 import new_code_cell

    root = find_book_root(root)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"cannot write to {out}: {exc.strerror}") from exc
    cell = new_code_cell(install_cell_source(repository_url(root)))
    cell.metadata["tags"] = ["remove-cell"]
    written = []
    for chapter in chapter_paths(root):
        nb = jupytext.read(chapter)
        for c in nb.cells:
            if c.cell_type == "code":
                c.outputs, c.execution_count = [], None
        nb.cells.insert(0, cell)
        nb.metadata.pop("jupytext", None)
        target = out / f"{chapter.stem}.ipynb"
        jupytext.write(nb, target, fmt="ipynb")
        written.append(target)
    data = root / "book" / "data"
    if data.is_dir():
        shutil.copytree(data, out / "data", dirs_exist_ok=True)
    return written
