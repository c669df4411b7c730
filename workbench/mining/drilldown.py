"""Per-theorem drill-down of a mined output (notebook 03): what was sent to Lean and what it said.

The tables and views are pure functions of :class:`workbench.mining.report.Mined`; :func:`view_html`
renders a view as one HTML fragment and :func:`drilldown_widget` wires it to filters and a theorem picker.

The widget holds no ``ipywidgets.Output``: an Output widget's captured displays make a headless runner
(nbclient, under papermill and nbval) mimic the frontend by sending ``comm_msg`` on the kernel's shell
socket while it polls that socket for the cell's ``execute_reply`` (nbclient ``output_widget.py``
``OutputWidget.sync_state``); jupyter_client sends through a blocking shadow of the asyncio socket, the
edge-triggered ZMQ FD's wake-up for the reply can be consumed, and the poll then waits until its
deadline, forever without ``--execution-timeout`` (jupyter/nbclient#312). An ``HTML`` widget's value
travels as widget state on IOPub only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from typing import Any, Sequence

import pandas as pd

from workbench.htmltable import Html, html_table, scroll_box
from workbench.namespaces import infer_open_namespace, open_prefixes
from workbench.states import parse_state

__all__ = ["TheoremView", "SHOW", "theorem_view", "state_tree", "ground_truth_failures", "still_failing_identifiers",
           "theorem_table", "filter_theorems", "namespace_options", "theorems_by_interest", "candidate_failures",
           "normalise_message", "view_html", "show_view", "drilldown_widget"]

_METAVAR = re.compile(r"\?m\.\d+|\?u\.\d+|_uniq\.\d+")
_NUM = re.compile(r"\b\d+\b")
# Lean 4's messages for a name that does not resolve (Lean.Elab: `throwError "unknown identifier '{n}'"`,
# `unknown constant` for an explicit constant)
_UNKNOWN = re.compile(r"unknown (?:identifier|constant) '([^']+)'")
_ATTEMPT_COLUMNS = ["step", "role", "sent", "outcome", "error_kind", "open_prefix", "messages"]

# The theorem picker's filters: label -> what a theorem must have (columns of :func:`theorem_table`)
SHOW = {
    "all theorems": None,
    "ground truth still failing after open … in": "still_failing",
    "ground truth rescued by open … in": "rescued_by_open",
    "ground truth failed as written": "failed_as_written",
}


@dataclass
class TheoremView:
    theorem: str
    ground_truth: pd.DataFrame  # one row per ground-truth tactic sent (plain and `open ... in` retries)
    attempts: pd.DataFrame  # every tactic sent, in order
    records: pd.DataFrame  # the theorem's mined states
    tree: str  # the mined states as an indented text tree (goals, not hypotheses)


def theorem_view(mined: Any, theorem: str) -> TheoremView:
    att = mined.attempts[mined.attempts.theorem == theorem].sort_values(["timestamp_ms", "step"], kind="stable")
    records = mined.records[mined.records.theorem_name == theorem]
    if att.empty and records.empty:
        raise KeyError(f"theorem not in the mined output: {theorem!r}")
    gt = att[att.role.str.startswith("ground_truth")][_ATTEMPT_COLUMNS].reset_index(drop=True)
    return TheoremView(theorem, gt, att[_ATTEMPT_COLUMNS].reset_index(drop=True), records, state_tree(records))


def _children(records: pd.DataFrame) -> tuple[dict[Any, Any], dict[Any, list[Any]], list[Any]]:
    rows = {r.state_id: r for r in records.itertuples(index=False)}
    children: dict[Any, list[Any]] = {}
    roots = []
    for r in rows.values():
        parent = None if pd.isna(r.parent_state_id) else int(r.parent_state_id)
        (children.setdefault(parent, []) if parent in rows else roots).append(r.state_id)
    return rows, {k: sorted(v) for k, v in children.items()}, sorted(roots)


def _goal_lines(state_pp: str) -> list[str]:
    goals = parse_state(str(state_pp))
    if not goals:
        return ["no goals"]
    return [(f"case {g.case}: " if g.case else "") + f"⊢ {g.target}" for g in goals]


def state_tree(records: pd.DataFrame) -> str:
    """``records`` of one theorem as an indented tree: ``tactic -> [label kind] ⊢ goal | ⊢ goal``."""
    rows, children, roots = _children(records)
    lines: list[str] = []

    def walk(sid: Any, indent: int) -> None:
        r = rows[sid]
        tactic = f"{' '.join(str(r.tactic_applied).split())} -> " if r.tactic_applied else ""
        prefix = f"open {r.open_prefix} in " if isinstance(r.open_prefix, str) and r.open_prefix else ""
        lines.append(f"{'  ' * indent}{prefix}{tactic}[{r.label} {r.record_kind}] {' | '.join(_goal_lines(r.state_pp))}")
        for c in children.get(sid, []):
            walk(c, indent + 1)

    for root in roots:
        walk(root, 0)
    return "\n".join(lines)


# --- the namespace questions ---------------------------------------------------------------------


def ground_truth_failures(attempts: pd.DataFrame) -> pd.DataFrame:
    """One row per ground-truth step that failed as written: its ``open … in`` retry and Lean's last word.

    Columns: run, theorem, step, tactic, rescued (the retry reached the traced state), retried, message
    (the retry's message when there was one, else the plain failure's), identifier (the name Lean did not
    know, when that was the error).
    """
    key = ["run", "theorem", "step"]
    plain = attempts[(attempts.role == "ground_truth") & (attempts.outcome == "ground_truth_failed")]
    retry = (attempts[attempts.role == "ground_truth_open"].groupby(key, as_index=False)
             .last()[key + ["outcome", "messages"]].rename(columns={"outcome": "retry", "messages": "retry_messages"}))
    m = plain[key + ["tactic", "messages"]].drop_duplicates(key).merge(retry, on=key, how="left")
    m["retried"] = m.retry.notna()
    m["rescued"] = m.retry == "ground_truth"
    m["message"] = m.retry_messages.where(m.retried, m.messages).fillna("")
    m["identifier"] = m.message.map(lambda text: (lambda x: x.group(1) if x else None)(_UNKNOWN.search(str(text))))
    return m[key + ["tactic", "retried", "rescued", "message", "identifier"]].reset_index(drop=True)


def still_failing_identifiers(attempts: pd.DataFrame, examples: int = 3) -> pd.DataFrame:
    """The names Lean still did not know after the ``open <theorem's namespaces> in`` retry, most steps first.

    These are the namespace mismatches the retry cannot fix (a file-level ``open``, an ``export`` from another
    namespace, a local notation), with how many ground-truth steps and theorems each one stops.
    """
    failures = ground_truth_failures(attempts)
    still = failures[~failures.rescued & failures.identifier.notna()]
    if still.empty:
        return pd.DataFrame(columns=["identifier", "steps", "theorems", "example_theorems", "example_tactic"])
    table = still.groupby("identifier").agg(
        steps=("step", "size"), theorems=("theorem", "nunique"),
        example_theorems=("theorem", lambda s: ", ".join(list(dict.fromkeys(s))[:examples])),
        example_tactic=("tactic", "first"))
    return table.sort_values(["steps", "theorems"], ascending=False).reset_index()


def theorem_table(mined: Any) -> pd.DataFrame:
    """One row per theorem: its namespace, ground-truth steps failed as written / rescued / still failing,
    how the walk ended and how many records it gave."""
    names = sorted(set(mined.records.theorem_name) | set(mined.attempts.theorem))
    failures = ground_truth_failures(mined.attempts)
    by = failures.groupby("theorem")
    table = pd.DataFrame(index=pd.Index(names, name="theorem"))
    table["namespace"] = [infer_open_namespace(n) or "" for n in names]
    table["failed_as_written"] = by.size().reindex(names, fill_value=0).astype(int)
    table["rescued_by_open"] = by.rescued.sum().reindex(names, fill_value=0).astype(int)
    table["still_failing"] = table.failed_as_written - table.rescued_by_open
    table["records"] = mined.records.groupby("theorem_name").size().reindex(names, fill_value=0).astype(int)
    lines = mined.theorems.drop_duplicates("theorem", keep="last").set_index("theorem") if len(mined.theorems) else None
    ended = (lines.status.astype(str) + ": " + lines.reason.fillna("").astype(str)) if lines is not None else pd.Series(dtype=str)
    table["ended"] = ended.reindex(names).fillna("")
    return table


def filter_theorems(table: pd.DataFrame, show: str = "all theorems", namespace: str = "", search: str = "") -> list[str]:
    """Theorem names that pass the picker's filters, most interesting first (still failing, then rescued).

    ``show``: a key of :data:`SHOW`; ``namespace``: the theorem lies in it or below it; ``search``: a
    case-insensitive part of the name.
    """
    column = SHOW[show]
    keep = table if column is None else table[table[column] > 0]
    if namespace:
        keep = keep[[n == namespace or n.startswith(namespace + ".") for n in keep.namespace]]
    if search.strip():
        keep = keep[keep.index.str.contains(search.strip(), case=False, regex=False)]
    ordered = keep.assign(_name=keep.index).sort_values(["still_failing", "failed_as_written", "_name"],
                                                        ascending=[False, False, True])
    return list(ordered.index)


def namespace_options(table: pd.DataFrame) -> list[tuple[str, str]]:
    """(label with theorem count, namespace) for every namespace the theorems lie in, outer ones included."""
    counts: dict[str, int] = {}
    for name in table.index:
        for prefix in open_prefixes(name):
            counts[prefix] = counts.get(prefix, 0) + 1
    return [("any namespace", "")] + [(f"{ns} ({n})", ns) for ns, n in sorted(counts.items())]


def theorems_by_interest(mined: Any) -> list[str]:
    """Theorems whose ground truth still fails after ``open … in`` first, then the rescued ones, then the rest."""
    return filter_theorems(theorem_table(mined))


def normalise_message(message: str) -> str:
    """First line of a Lean message with metavariable and numeric noise replaced (groups alike errors)."""
    first = next((line.strip() for line in str(message).splitlines() if line.strip()), "(no message)")
    return _NUM.sub("N", _METAVAR.sub("?m", first))


def candidate_failures(attempts: pd.DataFrame, top: int = 20) -> pd.DataFrame:
    """Policy candidates Lean rejected, by (normalised) error message: attempts, theorems, one example."""
    failed = attempts[attempts.role.isin(["candidate", "chain"]) & (attempts.outcome == "lean_error")]
    if failed.empty:
        return pd.DataFrame(columns=["message", "error_kind", "attempts", "theorems", "example_tactic"])
    failed = failed.assign(message=failed.messages.map(normalise_message))
    table = failed.groupby(["message", "error_kind"], dropna=False).agg(
        attempts=("sent", "size"), theorems=("theorem", "nunique"), example_tactic=("sent", "first"))
    return table.sort_values(["attempts", "theorems"], ascending=False).head(top).reset_index()


# --- HTML ----------------------------------------------------------------------------------------

_CODE = "font-family:var(--jp-code-font-family,monospace);font-size:12px;white-space:pre-wrap;margin:2px 0"


def _state_card(r: Any) -> str:
    colour = "#2e7d32" if r.label == "positive" else "#c62828"
    remaining = "" if pd.isna(r.remaining_depth) or int(r.remaining_depth) < 0 else f" · {int(r.remaining_depth)} to QED"
    head = (f'<div style="font-size:11px;color:{colour};font-weight:bold">{escape(str(r.label))} · '
            f'{escape(str(r.record_kind))} · depth {int(r.depth_from_root)}{remaining}</div>')
    tactic = ""
    if r.tactic_applied:
        prefix = f"open {r.open_prefix} in\n" if isinstance(r.open_prefix, str) and r.open_prefix else ""
        tactic = f'<pre style="{_CODE};background:#f3f3f3;padding:2px 4px">{escape(prefix + str(r.tactic_applied))}</pre>'
    goals = parse_state(str(r.state_pp))
    targets = escape("\n".join(_goal_lines(r.state_pp)))
    hyps = [f"{h.name} : {h.type}" for g in goals[:1] for h in g.hypotheses]
    details = (f'<details><summary style="font-size:11px;color:#555">{len(hyps)} hypotheses (first goal)</summary>'
               f'<pre style="{_CODE}">{escape(chr(10).join(hyps))}</pre></details>') if hyps else ""
    return (f'<div style="border:1px solid {colour};border-radius:4px;padding:4px 6px;min-width:14em;max-width:34em;'
            f'background:#fff">{head}{tactic}<pre style="{_CODE}">{targets}</pre>{details}</div>')


def _tree_html(records: pd.DataFrame) -> str:
    """Each state as a card with its goals; a state's children side by side below it."""
    rows, children, roots = _children(records)

    def subtree(sid: Any) -> str:
        kids = children.get(sid, [])
        below = ('<div style="display:flex;gap:6px;align-items:flex-start;margin:4px 0 0 10px;padding-left:6px;'
                 'border-left:2px solid #ccc">' + "".join(subtree(c) for c in kids) + "</div>") if kids else ""
        return f'<div style="display:flex;flex-direction:column">{_state_card(rows[sid])}{below}</div>'

    return "".join(subtree(r) for r in roots) or "<p>no mined states</p>"


def view_html(view: TheoremView) -> Html:
    """The whole drill-down of one theorem: ground-truth path, tree of states (siblings side by side), every
    tactic sent with Lean's messages; every table complete and scrollable, multi-line tactics as written."""
    parts = [
        f"<h4 style='margin:8px 0 4px'><code>{escape(view.theorem)}</code></h4>",
        "<b>Ground-truth path</b> (each step as written, then its <code>open … in</code> retry when it failed)",
        html_table(view.ground_truth, max_height="18em"),
        "<b>Tree of mined states</b> (goals of each state; a state's children side by side)",
        scroll_box(f'<div style="padding:4px">{_tree_html(view.records)}</div>', max_height="40em"),
        f"<b>Every tactic sent, with Lean's messages</b> ({len(view.attempts)} rows)",
        html_table(view.attempts, max_height="28em"),
    ]
    text = f"{view.theorem}: {len(view.attempts)} tactics sent, {len(view.records)} states\n{view.tree}"
    return Html("<div>" + "".join(f"<div style='margin:4px 0'>{p}</div>" for p in parts) + "</div>", text)


def show_view(view: TheoremView) -> None:
    from IPython.display import display

    display(view_html(view))


def drilldown_widget(mined: Any, show: str = "all theorems") -> Any:
    """Filters (still failing / rescued by ``open``, namespace, name search) above a theorem picker and the
    picked theorem's :func:`view_html` (an ``HTML`` widget: see the module docstring for why not ``Output``)."""
    import ipywidgets as widgets

    table = theorem_table(mined)
    wide = {"description_width": "initial"}
    which = widgets.Dropdown(options=list(SHOW), value=show, description="show", style=wide)
    namespace = widgets.Dropdown(options=namespace_options(table), value="", description="namespace", style=wide)
    search = widgets.Text(value="", placeholder="part of a theorem name", description="search", style=wide,
                          continuous_update=False)
    names = filter_theorems(table, which.value)
    pick = widgets.Dropdown(options=names, value=names[0] if names else None, description="theorem", style=wide,
                            layout=widgets.Layout(width="70%"))
    count = widgets.HTML()
    view = widgets.HTML()

    def render(change: Any = None) -> None:
        view.value = str(view_html(theorem_view(mined, pick.value))) if pick.value is not None else \
            "<p>No theorem matches these filters.</p>"

    def refilter(change: Any = None) -> None:
        chosen = filter_theorems(table, which.value, namespace.value, search.value)
        count.value = f"<small>{len(chosen)} of {len(table)} theorems</small>"
        before = pick.value
        pick.options = chosen  # resets the value to the first match (or None)
        if pick.value == before:
            render()

    pick.observe(render, names="value")
    for w in (which, namespace, search):
        w.observe(refilter, names="value")
    count.value = f"<small>{len(names)} of {len(table)} theorems</small>"
    render()
    return widgets.VBox([widgets.HBox([which, namespace, search]), count, pick, view])
