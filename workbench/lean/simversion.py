"""The simulator as a newer Lean than its traces (pure; the default mode, ``--lean-version newer``).

Every Pantograph the workbench accepts is built for Lean v4.21 or newer, while LeanDojo's traces come from
early-2024 Lean (SPEC §1). The simulator models what that changes, once per theorem, on the traced text:

* **dropped variables** (:func:`dropped_variables`): a current Lean abstracts only the section variables
  the statement uses (instance-implicit ones when every variable they mention is kept), where the traces'
  Lean kept all of them in the proof's context. From text alone the simulator drops what it can tell is
  unused: a ``Type``/``Sort`` binder, an instance on a dropped one, a shadowed ``x✝``, when the target and
  the kept hypotheses never mention it. An unused explicit section variable looks like a theorem binder
  in the text and is kept (so the simulator drops fewer than Lean: docs/SIMULATOR.md has both rates).
* **printing** (:func:`workbench.lean.printer.newer_printing` and ``unscoped_notation``): ``∑ x ∈ s``,
  ``n + 1``, and scoped notation printed without the file's ``open scoped``.
* **gone lemmas** (:func:`gone_lemma`): a seeded share of the lemmas the traces reference no longer exists; a
  ground-truth step naming one fails as Lean's term elaborator does (``unknown identifier '<name>'``,
  ``Lean/Elab/Term.lean`` ``resolveName``).

Every state of the theorem is rewritten the same way (the dropped variables removed from each goal, the
``✝`` numbering recounted), so the simulator's ground truth still leads from state to state while the
client sees only the newer printing; the trace file keeps the old text.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Iterable, Sequence

from workbench.lean.binders import base_name
from workbench.lean.printer import drop_hypotheses, newer_printing, renumber, unscoped_notation
from workbench.lean.simrules import digest, unit
from workbench.states import INACCESSIBLE_MARK, Goal, Hypothesis, collapse, parse_state, render_state

__all__ = ["LEAN_VERSIONS", "dropped_variables", "newer_state", "gone_lemma"]

LEAN_VERSIONS = ("newer", "same")  # the simulator's modes: a newer Lean than the traces (default), or theirs

_SORT = re.compile(r"^(Type|Sort)\b")
_IDENT = re.compile(r"[^\W\d][\w'!?₀-₉✝⁰¹²³⁴⁵⁶⁷⁸⁹]*")


def _names(text: str | None) -> set[str]:
    return set(_IDENT.findall(text or ""))


def dropped_variables(goal: Goal) -> tuple[Hypothesis, ...]:
    """The first-state hypotheses a newer Lean's constant type would not have (see the module docstring)."""
    hyps = goal.hypotheses
    kinds = []
    for i, h in enumerate(hyps):
        if INACCESSIBLE_MARK in h.name and base_name(h.name) == "inst":
            kinds.append("instance")
        elif h.value is None and _SORT.match(collapse(h.type)):
            kinds.append("sort")
        elif INACCESSIBLE_MARK in h.name and any(base_name(x.name) == base_name(h.name) for x in hyps[i + 1:]):
            kinds.append("shadowed")
        else:
            kinds.append("kept")
    kept = {i for i, k in enumerate(kinds) if k == "kept"}
    while True:  # sorts and shadowed variables that something kept mentions are kept, transitively
        mentioned = _names(goal.target).union(*(_names(hyps[i].type) | _names(hyps[i].value) for i in kept))
        more = {i for i, k in enumerate(kinds) if k in ("sort", "shadowed") and i not in kept
                and hyps[i].name in mentioned}
        if not more:
            break
        kept |= more
    kept_names = {hyps[i].name for i in kept}
    all_names = {h.name for h in hyps}
    for i, k in enumerate(kinds):  # an instance stays when every variable it mentions stays
        if k == "instance" and (_names(hyps[i].type) & all_names) <= kept_names:
            kept.add(i)
    return tuple(h for i, h in enumerate(hyps) if i not in kept)


def _newer_goal(goal: Goal, dropped: Sequence[Hypothesis]) -> Goal:
    goal = renumber(drop_hypotheses(goal, dropped))

    def printed(text: str | None) -> str | None:
        return None if text is None else unscoped_notation(newer_printing(text))

    hyps = tuple(Hypothesis(h.name, printed(h.type) or "", printed(h.value)) for h in goal.hypotheses)
    return replace(goal, target=printed(goal.target) or "", hypotheses=hyps)


def newer_state(text: str, dropped: Sequence[Hypothesis]) -> str:
    """A traced state as the newer Lean prints it (canonical text); an unparseable one is kept as it is."""
    try:
        goals = parse_state(text)
    except ValueError:
        return text
    return render_state(_newer_goal(g, dropped) for g in goals)


def gone_lemma(seed: int, references: Iterable[tuple[str, str]], rate: float) -> str | None:
    """The first referenced lemma (as written) that no longer exists in the newer Mathlib, else None.
    Which lemmas are gone is a seeded hash of the full name, so every theorem agrees on them."""
    if rate <= 0:
        return None
    for written, full in references:
        if unit(digest(seed, "gone", full), 0) < rate:
            return written
    return None
