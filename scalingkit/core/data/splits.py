"""The train/validation split of a corpus, by a hash of each document's name.

A document goes to validation when a hash of its name, read as a fraction in [0, 1),
falls below ``val_fraction``: deterministic, machine-independent and uncorrelated with
document order (:func:`split_documents`).
"""

from __future__ import annotations

import hashlib

__all__ = ["is_validation", "split_documents"]


def _hash_fraction(name: str) -> float:
    """First 8 bytes of SHA-256 of ``name`` as a fraction of 2^64, in [0, 1)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") / 2.0**64


def is_validation(name: str, val_fraction: float) -> bool:
    """Whether document ``name`` falls in the validation split by its hash alone.

    A hash of the name, read as a fraction in [0, 1), is compared with
    ``val_fraction``: deterministic, machine-independent and uncorrelated with document
    order. :func:`split_documents` adds one guard on top (both splits non-empty).
    """
    return _hash_fraction(name) < val_fraction


def split_documents(names: list[str], val_fraction: float) -> set[str]:
    """The validation documents among ``names``.

    Those whose hash fraction is below ``val_fraction``; if that leaves validation
    empty, the document with the lowest hash moves there, and if it leaves training
    empty, the one with the highest hash moves back (given at least two documents).
    """
    if len(set(names)) < 2:
        raise ValueError(
            f"a corpus needs at least 2 documents to split into train and validation, "
            f"got {len(set(names))}; use a smaller max_doc_bytes or add files"
        )
    ranked = sorted(set(names), key=_hash_fraction)
    val = {n for n in ranked if is_validation(n, val_fraction)}
    if not val:
        val = {ranked[0]}
    if len(val) == len(ranked):
        val.discard(ranked[-1])
    return val
