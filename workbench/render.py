"""Render an executed notebook to a shareable HTML report: no machine paths, no run metadata, no bar noise.

    python -m workbench.render reports/02_mine_negatives.ipynb reports/02_mine_negatives.html

What is removed: papermill/execution metadata (timings, kernel paths), progress-bar lines on stderr
(tqdm's carriage-return refreshes), and absolute paths of this checkout, the Python environment and
the home folder (replaced by ``<repo>``, ``<python>``, ``~``). Figures and tables are kept as they are.
Log lines (a kernel's stderr) show as plain text, not in the error colour a traceback gets; a notebook
that did not run to its end (an error, an interrupted run) gets a banner at the top saying where it stopped.
The report is readable offline: nbconvert's lab template loads require.js, MathJax and mermaid from
cdnjs.cloudflare.com; our notebooks use none of them (no LaTeX, no diagrams, widgets removed here), and a
blocking ``<script src>`` to a host a machine cannot reach stalls the page in ``readyState == "loading"``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from html import escape
from pathlib import Path
from typing import Any, Iterable

__all__ = ["clean_notebook", "render_report", "machine_paths", "unfinished", "main"]

# a tqdm refresh: "  40%|████      | 4/10 [00:01<00:02, ...]" (with or without a description)
_BAR = re.compile(r"^.*\d+%\|.*\|.*$|^.*\d+(?:\.\d+)?\w*/s\]\s*$")


def machine_paths(repo: Path | None = None) -> list[tuple[str, str]]:
    """(absolute prefix, placeholder), longest first, for this machine."""
    pairs = {str(Path(sys.prefix).resolve()): "<python>", str(Path(sys.base_prefix).resolve()): "<python>",
             str(Path.home().resolve()): "~"}
    if repo is not None:
        pairs[str(repo.resolve())] = "<repo>"
        pairs[str(repo.resolve().parent)] = "<repo>/.."
    for prefix in list(pairs):
        if prefix in ("/", ""):
            del pairs[prefix]
    return sorted(pairs.items(), key=lambda kv: -len(kv[0]))


def _scrub(text: str, paths: Iterable[tuple[str, str]]) -> str:
    for prefix, placeholder in paths:
        text = text.replace(prefix, placeholder)
    return text


def _is_bar_noise(text: str) -> bool:
    lines = [line for chunk in text.split("\n") for line in chunk.split("\r") if line.strip()]
    return bool(lines) and all(_BAR.match(line) for line in lines)


def unfinished(nb: Any) -> str | None:
    """Why ``nb`` (an executed notebook) did not run to its end, or None when every code cell ran cleanly."""
    code = [(i, c) for i, c in enumerate(nb.cells, 1) if c.cell_type == "code" and c.source.strip()]
    for i, cell in code:
        error = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
        if error is not None:
            return f"it stopped with an error in cell {i} ({error.get('ename', 'error')}: {error.get('evalue', '')})"
    pending = [i for i, c in code if c.get("execution_count") is None
               or c.metadata.get("papermill", {}).get("status") in ("pending", "running")]
    if pending:
        return f"cells {pending[0]}-{pending[-1]} did not run ({len(pending)} of {len(code)} code cells): the run was interrupted"
    return None


def _banner(reason: str) -> Any:
    import nbformat

    html = ('<div style="background:#b00020;color:white;padding:10px;font-weight:bold">'
            f"UNFINISHED NOTEBOOK: {escape(reason)}. What follows is partial.</div>")
    return nbformat.v4.new_markdown_cell(html, metadata={"workbench": "unfinished"})


def clean_notebook(nb: Any, repo: Path | None = None) -> Any:
    """``nb`` (nbformat node) without run metadata, progress-bar output and machine paths (in place); a
    banner first when the notebook did not run to its end."""
    paths = machine_paths(repo)
    reason = unfinished(nb)
    nb.cells = [c for c in nb.cells if c.metadata.get("workbench") != "unfinished"]
    if reason:
        nb.cells.insert(0, _banner(reason))
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for key in ("papermill", "execution", "ExecuteTime"):
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                if out.get("name") == "stderr" and _is_bar_noise(out.get("text", "")):
                    continue
                # stderr is where log lines go; nbconvert paints it like an error (pink), tracebacks are "error"s
                out["name"] = "stdout"
                out["text"] = _scrub(out.get("text", ""), paths)
            elif out.get("output_type") in ("display_data", "execute_result"):
                data = out.get("data", {})
                if "application/vnd.jupyter.widget-view+json" in data:
                    continue  # a widget (progress bar, dropdown) needs a live kernel; its text/plain is a repr
                for mime in ("text/plain", "text/html", "text/markdown"):
                    if mime in data:
                        value = data[mime]
                        data[mime] = _scrub("".join(value) if isinstance(value, list) else value, paths)
                if not data:
                    continue
            elif out.get("output_type") == "error":
                out["traceback"] = [_scrub(line, paths) for line in out.get("traceback", [])]
            kept.append(out)
        cell["outputs"] = kept
    return nb


# nbconvert's lab template (nbconvert 7, templates/lab/index.html.j2) without its three remote scripts:
# our notebooks use none of them (no LaTeX, no diagrams, widgets removed above), and a blocking
# ``<script src>`` to cdnjs on a machine without internet stalls the page in ``readyState == "loading"``.
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def render_report(executed: Path, html: Path, repo: Path | None = None) -> Path:
    """The report is readable offline (no remote script)."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    nb = clean_notebook(nbformat.read(str(executed), as_version=4), repo)
    exporter = HTMLExporter(template_name="lab", template_file="workbench_offline.html.j2",
                            extra_loaders=[DictLoader({"workbench_offline.html.j2": _OFFLINE_TEMPLATE})])
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": html.stem}})
    html.write_text(body, encoding="utf-8")
    return html


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m workbench.render", description=__doc__.splitlines()[0])
    p.add_argument("executed", type=Path, help="executed notebook (papermill output)")
    p.add_argument("html", type=Path, help="HTML report to write")
    p.add_argument("--repo", type=Path, default=Path(os.getcwd()), help="checkout whose paths are hidden (default: .)")
    args = p.parse_args(argv)
    render_report(args.executed, args.html, args.repo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
