"""Where a trace is not a chain: step i's ``state_after`` is not step i+1's ``state_before`` (pure).

Two causes in LeanDojo traces (issue 9 §1b):

* ``nested``: step i+1 is an inner tactic of an earlier step (``have h : T := by simp`` is traced as the
  whole ``have`` and then ``simp``); Lean already ran it as part of the enclosing tactic.
* ``focus``: inside ``·``/``case`` blocks LeanDojo shows only the focused goal(s), so the next step starts
  from a goal that was open before (seen in an earlier state) while the previous step's ``state_after``
  showed only its own block.
* ``other``: neither (e.g. a goal that first appears there).

Also: which theorems' first tactic names a hypothesis of the first state (those fail on Pantograph's
``copyFrom`` root unless the binders are introduced first).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence

from workbench.lean.binders import first_state_names
from workbench.states import parse_state, render_state
from workbench.tactics import normalize_tactic
from workbench.traces import Theorem

__all__ = ["Break", "binder_table", "goal_texts", "is_nested_in", "classify_breaks", "break_counts", "first_tactic_names_binder"]


@dataclass(frozen=True, slots=True)
class Break:
    index: int  # step i: between step i's state_after and step i+1's state_before
    kind: str  # nested | focus | other


def goal_texts(state_text: str) -> list[str]:
    """Canonical text of each goal of a state (empty when it does not parse)."""
    try:
        return [render_state((g,)) for g in parse_state(state_text)]
    except ValueError:
        return []


def is_nested_in(tactic: str, earlier: Iterable[str]) -> bool:
    """``tactic`` is written inside one of the ``earlier`` (longer) tactics."""
    t = normalize_tactic(tactic)
    return bool(t) and any(len(e) > len(t) and t in e for e in map(normalize_tactic, earlier))


def classify_breaks(theorem: Theorem) -> list[Break]:
    out = []
    seen: set[str] = set()
    steps = theorem.steps
    for i in range(len(steps) - 1):
        a, b = steps[i], steps[i + 1]
        seen.update(goal_texts(a.state_before))
        seen.update(goal_texts(a.state_after))
        after, before = goal_texts(a.state_after), goal_texts(b.state_before)
        if after == before:
            continue
        if is_nested_in(b.tactic, (s.tactic for s in steps[: i + 1])):
            kind = "nested"
        elif before and all(g in seen for g in before):
            kind = "focus"
        else:
            kind = "other"
        out.append(Break(i, kind))
    return out


def break_counts(theorems: Sequence[Theorem]) -> dict[str, int]:
    """Consecutive step pairs, breaks by kind, and theorems with at least one break (for the group summary)."""
    kinds: Counter = Counter()
    with_break = 0
    pairs = 0
    for t in theorems:
        pairs += max(0, len(t.steps) - 1)
        breaks = classify_breaks(t)
        kinds.update(b.kind for b in breaks)
        with_break += bool(breaks)
    return {"step_pairs": pairs, "breaks": sum(kinds.values()), **{f"breaks_{k}": kinds[k] for k in
            ("focus", "nested", "other")}, "multi_step_theorems": sum(1 for t in theorems if len(t.steps) > 1),
            "theorems_with_breaks": with_break}


def first_tactic_names_binder(theorem: Theorem) -> str | None:
    """The first-state hypothesis the first tactic names, if any (it is a ∀-binder on copyFrom's root)."""
    if not theorem.steps:
        return None
    names = first_state_names(theorem.steps[0].state_before)
    for ident in re.findall(r"(?<![\w.'])[^\W\d][\w'!?₀-₉]*", theorem.steps[0].tactic):
        if ident in names:
            return ident
    return None


def binder_table(theorems: Sequence[Theorem]) -> "pd.DataFrame":
    """One row per theorem: first-state hypotheses, and the one its first tactic names (notebook 01)."""
    import pandas as pd

    rows = []
    for t in theorems:
        try:
            hyps = sum(len(g.hypotheses) for g in parse_state(t.steps[0].state_before)) if t.steps else 0
        except ValueError:  # an unparseable first state: counted as none
            hyps = 0
        rows.append({"theorem": t.full_name, "first_state_hypotheses": hyps,
                     "first_tactic_names": first_tactic_names_binder(t) or "",
                     "first_tactic": t.steps[0].tactic if t.steps else ""})
    return pd.DataFrame(rows)
