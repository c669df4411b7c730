"""One progress-bar factory for every long loop (mining, encoding, training)."""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(**kwargs: Any):
    """A tqdm bar: a widget in Jupyter when ipywidgets is installed, text otherwise.

    When stderr is not a terminal (papermill, nbconvert, CI logs) every refresh is kept as a new
    line, so refreshes are spaced out to keep executed notebooks and logs readable.
    """
    try:
        import ipywidgets  # noqa: F401  (tqdm.auto only warns without it)
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm import tqdm
    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", 10.0)
    return tqdm(**kwargs)
