"""One progress-bar factory for every long loop (mining, encoding, training), and the notebooks' log lines."""

from __future__ import annotations

import logging
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


class _ShowLogs(logging.StreamHandler):
    """The handler :func:`show_logs` adds (a class of its own so a second call replaces, not doubles, it)."""


def show_logs(level: int = logging.INFO, logger: str = "workbench") -> logging.Logger:
    """Show ``logger``'s records (the package's progress lines, plans, warnings) on stderr, one line each.

    For notebooks: a kernel's stderr is what JupyterLab shows under the cell and what ``papermill
    --log-output`` prints on the terminal. Only this package's logger, so no library's chatter (httpx
    requests) comes with it. Calling it again replaces the handler.
    """
    target = logging.getLogger(logger)
    for handler in [h for h in target.handlers if isinstance(h, _ShowLogs)]:
        target.removeHandler(handler)
    handler = _ShowLogs(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S"))
    target.addHandler(handler)
    target.setLevel(level)
    return target
