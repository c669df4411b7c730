"""The theorem's signature as Pantograph starts it, and the ``intro`` that undoes it (pure).

``goal.start {"copyFrom": NAME}`` elaborates ``GoalState.create cInfo.type``: one goal whose target is
the constant's whole type and whose context is empty (lenianiva/Pantograph ``Repl.lean`` @0528a15,
``goal_start``). LeanDojo's first ``state_before`` shows the same binders as hypotheses. This module
turns a first-state goal into the ∀-target Lean prints (for the simulator and tests) and into the
``intro`` that moves those binders back into the context (for the walk).

Printing follows Lean 4's delaborator: consecutive binders of one kind and type are grouped
(``(a b : α)``), instance hypotheses ``inst✝ : C α`` become ``[inst : C α]``, an explicit binder that
nothing later mentions is printed as an arrow (``a < b → …``). LeanDojo does not record binder kinds,
so a binder whose type is a universe (``Type u``, ``Sort*``) and that later types mention is taken as
implicit ``{α : Type u}`` (Mathlib's ``variable {α : Type*}`` convention); that choice only affects the
root's text, never which state ``intro`` reaches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from workbench.states import INACCESSIBLE_MARK, Goal, Hypothesis, collapse, parse_state

__all__ = ["Binder", "binders_of", "base_name", "first_state_names", "forall_target", "intro_tactic", "introduce",
           "sanitize_names"]

_SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
_SORT = re.compile(r"^(Type|Sort)\b")
_IDENT = re.compile(r"[A-Za-z_α-ωΑ-Ω][\w'.!?₀-₉]*")


@dataclass(frozen=True, slots=True)
class Binder:
    name: str  # base name, without ✝ (what the ∀ prints)
    type: str
    kind: str  # "explicit" | "implicit" | "instance"
    inaccessible: bool  # LeanDojo showed it as `x✝`: the walk introduces it with `_`
    value: str | None = None  # let-bound hypothesis (`x : T := v`)


def base_name(name: str) -> str:
    return name.rstrip(_SUPERSCRIPTS).removesuffix(INACCESSIBLE_MARK)


def first_state_names(state_text: str) -> frozenset[str]:
    """Hypothesis names of a trace's first state, with and without the inaccessible mark."""
    try:
        goals = parse_state(state_text)
    except ValueError:
        return frozenset()
    names = {h.name for g in goals for h in g.hypotheses if h.name}
    return frozenset(names | {base_name(n) for n in names})


def _mentions(text: str, name: str) -> bool:
    return any(m.group(0) == name for m in _IDENT.finditer(text))


def binders_of(goal: Goal) -> tuple[Binder, ...]:
    """The signature binders behind a first-state goal's hypotheses, in order."""
    out = []
    hyps = goal.hypotheses
    for i, h in enumerate(hyps):
        inaccessible = INACCESSIBLE_MARK in h.name
        name = base_name(h.name) or "x"
        later = [x.type for x in hyps[i + 1:]] + [goal.target]
        if inaccessible and name == "inst":
            kind = "instance"
        elif _SORT.match(collapse(h.type)) and any(_mentions(t, h.name) for t in later):
            kind = "implicit"
        else:
            kind = "explicit"
        out.append(Binder(name, collapse(h.type), kind, inaccessible, h.value))
    return tuple(out)


def forall_target(binders: Sequence[Binder], body: str) -> str:
    """Lean's printing of ``∀ binders, body`` (grouped binders, arrows for unused explicit ones)."""
    text = collapse(body)
    # Built from the innermost binder outwards: an arrow or a let needs to know what follows it.
    groups: list[tuple[str, str, list[str]]] = []  # (kind, type, names) of the current ∀ run, outermost first

    def flush() -> None:
        nonlocal text
        if groups:
            brackets = {"explicit": "({} : {})", "implicit": "{{{} : {}}}", "instance": "[{} : {}]"}
            inner = " ".join(brackets[k].format(" ".join(ns), t) for k, t, ns in groups)
            text = f"∀ {inner}, {text}"
            groups.clear()

    for i in range(len(binders) - 1, -1, -1):
        b = binders[i]
        rest = [x.type for x in binders[i + 1:]] + [body] + [x.value or "" for x in binders[i + 1:]]
        if b.value is not None:
            flush()
            text = f"let {b.name} := {collapse(b.value)};\n{text}"
        elif b.kind == "explicit" and not any(_mentions(t, b.name) for t in rest):
            flush()
            text = f"{b.type} → {text}"
        elif groups and b.kind != "instance" and groups[0][:2] == (b.kind, b.type):
            groups[0][2].insert(0, b.name)
        else:
            groups.insert(0, (b.kind, b.type, [b.name]))
    flush()
    return text


def intro_tactic(goal: Goal) -> str | None:
    """``intro`` with the trace's names (``_`` for an inaccessible one); None when there is nothing to introduce."""
    names = ["_" if INACCESSIBLE_MARK in h.name else h.name for h in goal.hypotheses]
    return f"intro {' '.join(names)}" if names else None


def _superscript(n: int) -> str:
    return "".join(_SUPERSCRIPTS[int(d)] for d in str(n)) if n else ""


def sanitize_names(hyps: Sequence[tuple[str, bool, str, str | None]]) -> tuple[Hypothesis, ...]:
    """Context entries ``(base name, inaccessible, type, value)`` → hypotheses named as Lean prints them:
    an inaccessible name, or one shadowed by a later accessible one, gets ``✝``; older ones of the same
    base ``✝¹``, ``✝²``, … (an inaccessible later entry does not shadow an accessible one)."""
    shadowed = [False] * len(hyps)
    for i, (name, inacc, _, _) in enumerate(hyps):
        shadowed[i] = inacc or any(n == name and not later for n, later, _, _ in hyps[i + 1:])
    out = []
    for i, (name, _, type_, value) in enumerate(hyps):
        if shadowed[i]:
            newer = sum(1 for j in range(i + 1, len(hyps)) if shadowed[j] and hyps[j][0] == name)
            out.append(Hypothesis(f"{name}{INACCESSIBLE_MARK}{_superscript(newer)}", type_, value))
        else:
            out.append(Hypothesis(name, type_, value))
    return tuple(out)


def introduce(binders: Sequence[Binder], names: Sequence[str]) -> tuple[tuple[tuple[str, bool, str, str | None], ...],
                                                                        tuple[Binder, ...]]:
    """``intro names`` on pending binders: the new context entries and the binders still pending.

    ``_`` keeps the binder's own name, inaccessible. Raises ValueError when there are fewer binders
    than names (Lean: the target is not a ∀/→ any more)."""
    if len(names) > len(binders):
        raise ValueError("no additional binders")
    entries = []
    for b, n in zip(binders, names):
        entries.append((b.name, True, b.type, b.value) if n == "_" else (n, False, b.type, b.value))
    return tuple(entries), tuple(binders[len(names):])
