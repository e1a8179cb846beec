"""Time how long each chapter takes to execute on this machine (QUICK = True).

Exports the chapters as course notebooks (``python -m scalingkit notebooks``),
runs each one top to bottom with nbclient, and prints a Markdown table of wall
seconds per chapter together with the machine it ran on. The README's table of
chapter times comes from this script. Last line: ``total_s=<seconds>``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from scalingkit import book
from scalingkit.runs.provenance import provenance


def main() -> None:
    root = book.find_book_root(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory() as tmp:
        paths = book.export_notebooks(tmp, root)
        titles = {p.stem: _title(root / "book" / f"{p.stem}.md") for p in paths}
        print(f"machine: {provenance()['machine']}\n")
        print("| chapter | seconds |\n|---|---|")
        total = 0.0
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            t0 = time.perf_counter()
            NotebookClient(nb, timeout=900, kernel_name="python3",
                           resources={"metadata": {"path": tmp}}).execute()
            seconds = time.perf_counter() - t0
            total += seconds
            print(f"| {titles[path.stem]} | {seconds:.0f} |", flush=True)
    print(f"total_s={total:.0f}")


def _title(md: Path) -> str:
    for line in md.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return md.stem


if __name__ == "__main__":
    main()
