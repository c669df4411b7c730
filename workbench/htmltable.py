"""DataFrames as HTML tables that keep multi-line text (tactics, Lean messages) as Lean wrote it.

pandas' own HTML shows a newline inside a cell as a literal ``\\n`` (pandas 3) or folds it into a space;
a ``calc`` block or a multi-line Lean error then loses its layout. Here every cell keeps its line breaks
and indentation (``white-space: pre-wrap``), styles are inline (the report's CSS and JupyterLab's
sanitiser keep them), and a long table scrolls inside a bounded box instead of being cut.
"""

from __future__ import annotations

from html import escape
from typing import Any, Iterable

__all__ = ["CELL_STYLE", "html_table", "scroll_box", "Html"]

CELL_STYLE = ("white-space:pre-wrap;text-align:left;vertical-align:top;padding:2px 8px;"
              "border-bottom:1px solid #ddd;font-family:var(--jp-code-font-family,monospace);font-size:12px")
_HEAD_STYLE = ("text-align:left;vertical-align:bottom;padding:2px 8px;border-bottom:2px solid #999;"
               "position:sticky;top:0;background:#f7f7f7")


class Html:
    """An HTML fragment Jupyter displays as HTML; its text form (what ``papermill --log-output`` prints on a
    terminal, and ``text/plain`` in the saved notebook) is ``text``, never the markup."""

    def __init__(self, html: str, text: str | None = None) -> None:
        self.html = html
        self.text = text if text is not None else f"(HTML, {len(html):,} characters: open the notebook or its report)"

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.html


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None / NaN: empty, not "nan"
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return escape(", ".join(map(str, value)))
    return escape(str(value))


def scroll_box(inner: str, max_height: str | None = "28em", text: str | None = None) -> Html:
    """``inner`` in a box that scrolls (both ways) past ``max_height``; None: no height limit."""
    height = f"max-height:{max_height};" if max_height else ""
    return Html(f'<div style="{height}overflow:auto;border:1px solid #e0e0e0">{inner}</div>', text)


def html_table(frame: Any, *, max_height: str | None = "28em", index: bool = False,
               caption: str | None = None) -> Html:
    """Every row of ``frame`` (a pandas DataFrame) in a scrollable table; line breaks in cells are kept."""
    columns: Iterable[Any] = frame.columns
    head = "".join(f'<th style="{_HEAD_STYLE}">{escape(str(c))}</th>' for c in
                   ([frame.index.name or ""] if index else []) + list(columns))
    rows = []
    for idx, row in zip(frame.index, frame.itertuples(index=False, name=None)):
        cells = ([idx] if index else []) + list(row)
        rows.append("<tr>" + "".join(f'<td style="{CELL_STYLE}">{_cell(v)}</td>' for v in cells) + "</tr>")
    cap = f'<caption style="text-align:left;caption-side:top">{escape(caption)}</caption>' if caption else ""
    table = (f'<table style="border-collapse:collapse;margin:0">{cap}<thead><tr>{head}</tr></thead>'
             f'<tbody>{"".join(rows)}</tbody></table>')
    text = frame.to_string(index=index, max_rows=30, max_colwidth=80) if len(frame.columns) else "(empty table)"
    return scroll_box(table, max_height, text=(f"{caption}\n" if caption else "") + text)
