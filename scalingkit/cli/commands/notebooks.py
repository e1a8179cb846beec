"""``python -m scalingkit notebooks``: export the chapters as course notebooks."""

from __future__ import annotations

import argparse
from pathlib import Path

from scalingkit import book

HELP = "Export every chapter as a clean .ipynb (plus the data it reads) into a folder."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="folder to write the notebooks into")
    p.add_argument("--book-root", default=None,
                   help="repository root with _config.yml and _toc.yml (default: found)")


def run(args: argparse.Namespace) -> int:
    source = book.find_book_root(args.book_root) / "book"
    out = Path(args.out).resolve()
    if out == source.resolve() or source.resolve() in out.parents:
        raise ValueError(f"--out {args.out} lies inside the chapters' folder {source}, which "
                         "this command reads (and whose data/ it copies); write elsewhere")
    paths = book.export_notebooks(args.out, args.book_root)
    for path in paths:
        print(path)
    print(f"{len(paths)} notebooks written to {args.out}")
    return 0
