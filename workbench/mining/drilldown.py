"""Per-theorem drill-down of a mined output (notebook 03): what was sent to Lean and what it said.

The views are pure functions of :class:`workbench.mining.report.Mined`; :func:`drilldown_widget`
only wires them to an ipywidgets dropdown for JupyterLab.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["TheoremView", "theorem_view", "state_tree", "theorems_by_interest", "candidate_failures",
           "normalise_message", "drilldown_widget"]

_METAVAR = re.compile(r"\?m\.\d+|\?u\.\d+|_uniq\.\d+")
_NUM = re.compile(r"\b\d+\b")


@dataclass
class TheoremView:
    theorem: str
    ground_truth: pd.DataFrame  # one row per ground-truth tactic sent (plain and `open ... in` retries)
    attempts: pd.DataFrame  # every tactic sent, in order
    tree: str  # the mined states as an indented tree


def theorem_view(mined: Any, theorem: str) -> TheoremView:
    att = mined.attempts[mined.attempts.theorem == theorem].sort_values(["timestamp_ms", "step"], kind="stable")
    if att.empty and not (mined.records.theorem_name == theorem).any():
        raise KeyError(f"theorem not in the mined output: {theorem!r}")
    cols = ["step", "role", "sent", "outcome", "error_kind", "open_prefix", "messages"]
    gt = att[att.role.str.startswith("ground_truth")][cols].reset_index(drop=True)
    return TheoremView(theorem, gt, att[cols].reset_index(drop=True),
                       state_tree(mined.records[mined.records.theorem_name == theorem]))


def state_tree(records: pd.DataFrame, max_chars: int = 70) -> str:
    """``records`` of one theorem as an indented tree: ``tactic -> [label kind] state``."""
    children: dict[Any, list[Any]] = {}
    rows = {r.state_id: r for r in records.itertuples(index=False)}
    roots = []
    for r in rows.values():
        parent = None if pd.isna(r.parent_state_id) else int(r.parent_state_id)
        (children.setdefault(parent, []) if parent in rows else roots).append(r.state_id)
    lines: list[str] = []

    def walk(sid: Any, indent: int) -> None:
        r = rows[sid]
        state = " ".join(str(r.state_pp).split())
        state = state if len(state) <= max_chars else state[: max_chars - 1] + "…"
        tactic = f"{r.tactic_applied} -> " if r.tactic_applied else ""
        prefix = f"open {r.open_prefix} in " if isinstance(r.open_prefix, str) and r.open_prefix else ""
        lines.append(f"{'  ' * indent}{prefix}{tactic}[{r.label} {r.record_kind}] {state}")
        for c in sorted(children.get(sid, [])):
            walk(c, indent + 1)

    for root in sorted(roots):
        walk(root, 0)
    return "\n".join(lines)


def theorems_by_interest(mined: Any) -> list[str]:
    """Theorems with ground-truth failures first (the namespace cases), then the rest by name."""
    att = mined.attempts
    failed = att[(att.role == "ground_truth") & (att.outcome == "ground_truth_failed")].theorem.value_counts()
    names = sorted(set(mined.records.theorem_name) | set(att.theorem))
    return sorted(names, key=lambda n: (-int(failed.get(n, 0)), n))


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


def show_view(view: TheoremView) -> None:
    from IPython.display import Markdown, display

    display(Markdown(f"### `{view.theorem}`\n**Ground-truth path** (plain, then `open <namespace> in` retries)"))
    display(view.ground_truth)
    display(Markdown("**Every tactic sent, with Lean's messages**"))
    display(view.attempts)
    display(Markdown("**Tree of mined states**\n```\n" + view.tree + "\n```"))


def drilldown_widget(mined: Any) -> Any:
    """A dropdown of theorems (ground-truth failures first) above the chosen theorem's :func:`theorem_view`."""
    import ipywidgets as widgets

    names = theorems_by_interest(mined)
    pick = widgets.Dropdown(options=names, value=names[0] if names else None, description="theorem",
                            layout=widgets.Layout(width="60%"))
    out = widgets.Output()

    def render(change: Any = None) -> None:
        out.clear_output(wait=True)
        if pick.value is not None:
            with out:
                show_view(theorem_view(mined, pick.value))

    pick.observe(render, names="value")
    render()
    return widgets.VBox([pick, out])
