"""How the traces' Lean and a current Lean print the same state differently (pure).

The shared traces and LeanDojo Benchmark 4 were printed by the early-2024 Lean/Mathlib that LeanDojo 1.8.2
traced; every Pantograph the workbench accepts is built for Lean v4.21 or newer. The walk compares the two
printings to decide which of Lean's goals a ground-truth step works on; it never takes the trace's text
for Lean's. Known differences, each measured on the shared sample (docs/SIMULATOR.md):

* big operators: ``∑ x in s, f x`` is now ``∑ x ∈ s, f x`` (Mathlib, 2024), also ``∏``;
* successor: ``Nat.succ n`` (``succ n`` under ``open Nat``) is now ``n + 1`` in states made by
  ``induction``/``cases`` (Lean's ``@[induction_eliminator] Nat.rec_add_one``), ``n.succ`` where a
  statement writes it (generalised field notation: Pantograph v0.3.4 ``Test/Integration.lean`` L56 prints
  ``Nat.add_one`` as ``∀ (n : Nat), n + 1 = n.succ``);
* unused section variables: the traces' Lean kept every ``variable`` in the proof's context, a current
  Lean abstracts only those the statement uses, so the trace shows hypotheses Lean's state lacks
  (:func:`drop_hypotheses`), and the ``✝`` numbering of the rest shifts (:func:`renumber`);
* scoped notation (``𝓝``, ``ℝ≥0``) that the source file opened: Pantograph prints with an empty scope.
  Which notations a file opened is not in the traces, so this one is left to the fuzzy comparison.

:func:`newer_printing` rewrites the known ones from the old printing to the new; :func:`comparable` is the
normal form the walk compares (both sides rewritten, ``✝`` numbering and case tags dropped).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Sequence

from workbench.lean.binders import base_name, sanitize_names
from workbench.states import INACCESSIBLE_MARK, Goal, Hypothesis, collapse, render_state

__all__ = ["newer_printing", "unscoped_notation", "drop_hypotheses", "renumber", "comparable", "similarity",
           "PRINTER_CHANGES", "QUALITIES", "FUZZY_MIN", "FUZZY_MARGIN", "GoalMatch", "best_goal", "state_quality"]

# name -> what changed (the table docs/SIMULATOR.md measures)
PRINTER_CHANGES = {
    "big_operator_in": "∑ x in s, f x  →  ∑ x ∈ s, f x (also ∏)",
    "nat_succ": "Nat.succ n / succ n  →  n + 1",
}

_BIG_OP_IN = re.compile(r"([∑∏]\s*[^,∑∏]*?)\s+in\s+")
_SUCC = re.compile(r"(?<![\w.'])(?:Nat\.)?succ\s+(?=[\w(])")
_DOT_SUCC = re.compile(r"(?<![\w.'])([a-zα-ω][\w'₀-₉]*|\d+)\.succ(?![\w'])")
_IDENT_OR_NUMBER = re.compile(r"[^\W\d][\w'.₀-₉!?]*|\d+")
# Operators that bind tighter than `+` (or `+`/`-` on the left): `a * Nat.succ n` is `a * (n + 1)`.
_TIGHT_BEFORE = set("+-*/%^•∘")
_TIGHT_AFTER = set("*/%^•∘")
# Inside parentheses: anything looser than `+` keeps them (`Nat.succ (if c then a else b)`).
_LOOSE = re.compile(r"[=≠<>≤≥∧∨→↔,:∣|$]|\b(?:fun|if|then|else|let|match)\b|[∀∃λ↦]")


def _closing(text: str, start: int) -> int:
    """Index just past the parenthesised group opening at ``start`` (or -1 when unbalanced)."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    return -1


def _top_level(inner: str) -> str:
    """``inner`` with every nested parenthesised group removed (what the outer operator sees)."""
    out, depth = [], 0
    for ch in inner:
        depth += ch == "("
        if depth == 0:
            out.append(ch)
        depth -= ch == ")" and depth > 0
    return "".join(out)


_LAST_WORD = re.compile(r"[\w'.₀-₉!?]+$")
_KEYWORDS = frozenset({"then", "else", "fun", "with", "do", "return", "at", "in", "from", "by", "show"})


def _plus_one(text: str, start: int, end: int, arg: str) -> str:
    """``text[start:end]`` (a successor of ``arg``) written as ``arg + 1``, parenthesised as Lean would: after
    an operator tighter than ``+`` (or ``+``/``-`` itself), before a tighter one, or as a function's argument."""
    if arg.startswith("(") and arg.endswith(")") and not _LOOSE.search(_top_level(arg[1:-1])):
        arg = arg[1:-1]
    before, after = text[:start].rstrip(), text[end:].lstrip()
    word = _LAST_WORD.search(before)
    applied = before.endswith(")") or (word is not None and word.group(0) not in _KEYWORDS)
    tight = before[-1:] in _TIGHT_BEFORE or after[:1] in _TIGHT_AFTER or applied
    return f"({arg} + 1)" if tight else f"{arg} + 1"


def _rewrite_succ(text: str) -> str:
    pos = 0
    while (m := _SUCC.search(text, pos)) is not None:
        i = m.end()
        if text[i] == "(":
            j = _closing(text, i)
            if j < 0:
                break
        else:
            a = _IDENT_OR_NUMBER.match(text, i)
            if a is None:
                pos = i
                continue
            j = a.end()
        inner = _rewrite_succ(text[i:j])  # `Nat.succ (Nat.succ n)`
        new = _plus_one(text, m.start(), j, inner)
        text = text[: m.start()] + new + text[j:]
        pos = m.start() + len(new)
    return text


def newer_printing(text: str) -> str:
    """The old printing's known differences rewritten as a current Lean prints them (idempotent)."""
    text = _BIG_OP_IN.sub(r"\1 ∈ ", text)
    if "succ" in text:
        text = _rewrite_succ(text)
    return text


_SCOPED = (("ℝ≥0∞", "ENNReal"), ("ℝ≥0", "NNReal"), ("𝓝 ", "nhds "))


def unscoped_notation(text: str) -> str:
    """Scoped notation as Pantograph prints it with an empty scope (the simulator's model; the walk does
    not know which notations the file opened, so it never applies this)."""
    for old, new in _SCOPED:
        text = text.replace(old, new)
    return text


def drop_hypotheses(goal: Goal, dropped: Sequence[Hypothesis]) -> Goal:
    """``goal`` without the hypotheses that are the theorem's dropped variables: for each dropped one the
    first hypothesis with its base name and type goes (the first state's order is every later state's)."""
    if not dropped:
        return goal
    wanted = [(base_name(h.name), _plain(h.type)) for h in dropped]
    kept = []
    for h in goal.hypotheses:
        key = (base_name(h.name), _plain(h.type))
        if key in wanted:
            wanted.remove(key)
        else:
            kept.append(h)
    return Goal(goal.target, tuple(kept), goal.case) if len(kept) < len(goal.hypotheses) else goal


_NUMBERED = re.compile(r"(?<![\w'])([^\W\d][\w'.]*)" + INACCESSIBLE_MARK + "([⁰¹²³⁴⁵⁶⁷⁸⁹]*)")


def renumber(goal: Goal) -> Goal:
    """Recount the ``x✝¹`` numbering after hypotheses were dropped, as Lean's ``sanitizeNames`` does
    (the most recent ``x✝``, older ones ``x✝¹``, ``x✝²``, …), renaming mentions in types and the target."""
    entries = [(base_name(h.name), INACCESSIBLE_MARK in h.name, h.type, h.value) for h in goal.hypotheses]
    named = sanitize_names(entries)
    rename = {old.name: new.name for old, new in zip(goal.hypotheses, named)
              if old.name != new.name and INACCESSIBLE_MARK in old.name}
    if not rename and all(a.name == b.name for a, b in zip(goal.hypotheses, named)):
        return goal

    def sub(text: str | None) -> str | None:
        if text is None or not rename:
            return text
        return _NUMBERED.sub(lambda m: rename.get(m.group(0), m.group(0)), text)

    hyps = tuple(Hypothesis(n.name, sub(h.type) or "", sub(h.value)) for h, n in zip(goal.hypotheses, named))
    return Goal(sub(goal.target) or "", hyps, goal.case)


def _plain(text: str) -> str:
    """Whitespace collapsed and ``✝`` numbering dropped (``inst✝¹`` → ``inst✝``)."""
    return re.sub(INACCESSIBLE_MARK + "[⁰¹²³⁴⁵⁶⁷⁸⁹]+", INACCESSIBLE_MARK, collapse(text))


def _comparable_text(text: str) -> str:
    text = newer_printing(_plain(text))
    return _DOT_SUCC.sub(lambda m: _plus_one(text, m.start(), m.end(), m.group(1)), text) if ".succ" in text else text


def comparable(goal: Goal, dropped: Sequence[Hypothesis] = ()) -> str:
    """The normal form two printings of one goal share: the trace's dropped variables removed, the known
    printer differences rewritten (``n.succ`` too), ``✝`` numbering and the case tag dropped."""
    goal = drop_hypotheses(goal, dropped)
    hyps = tuple(Hypothesis(_plain(h.name), _comparable_text(h.type),
                            None if h.value is None else _comparable_text(h.value)) for h in goal.hypotheses)
    return render_state((Goal(_comparable_text(goal.target), hyps),))


def similarity(a: str, b: str) -> float:
    """How alike two comparable goal texts are, in [0, 1]: the target (after ``⊢``) weighs 0.6, the
    hypotheses 0.4 (``difflib``'s ratio of each)."""
    (ha, _, ta), (hb, _, tb) = a.rpartition("⊢ "), b.rpartition("⊢ ")
    target = difflib.SequenceMatcher(None, ta, tb, autojunk=False).ratio()
    hyps = difflib.SequenceMatcher(None, ha, hb, autojunk=False).ratio() if (ha or hb) else 1.0
    return 0.6 * target + 0.4 * hyps


# --- which of Lean's goals a traced goal is ------------------------------------------------------------

QUALITIES = ("exact", "normalised", "fuzzy", "none")
FUZZY_MIN = 0.75  # similarity a goal needs to be taken for the traced one (docs/SIMULATOR.md: how it was set)
FUZZY_MARGIN = 0.05  # ... and its lead over the runner-up when Lean has several goals


@dataclass(frozen=True, slots=True)
class GoalMatch:
    index: int | None  # the goal in Lean's list; None: none plausibly is the traced one
    quality: str  # exact | normalised | fuzzy | none
    score: float = 1.0  # similarity of the chosen (or best) goal
    reason: str | None = None  # index None: no_match (best below FUZZY_MIN) | ambiguous (within FUZZY_MARGIN)


def best_goal(lean: Sequence[Goal], wanted: Goal, dropped: Sequence[Hypothesis] = ()) -> GoalMatch:
    """The goal of Lean's list that the trace's ``wanted`` shows: exact text, else text after normalising
    the known printer differences (:func:`comparable`; a goal with the same case tag first), else the best
    :func:`similarity` if it reaches :data:`FUZZY_MIN` and leads the runner-up by :data:`FUZZY_MARGIN`.
    A single goal is always that goal (Lean decides whether the step applies); its quality is still what
    the text comparison says."""
    if not lean:
        return GoalMatch(None, "none", 0.0, "no_goals")
    texts = [render_state((g,)) for g in lean]
    exact = render_state((wanted,))
    if exact in texts:
        return GoalMatch(texts.index(exact), "exact")
    want = comparable(wanted, dropped)
    forms = [comparable(g) for g in lean]
    hits = [i for i, f in enumerate(forms) if f == want]
    if hits:
        tagged = [i for i in hits if lean[i].case == wanted.case]
        return GoalMatch((tagged or hits)[0], "normalised")
    scores = [similarity(want, f) for f in forms]
    order = sorted(range(len(lean)), key=lambda i: (-scores[i], i))
    best = order[0]
    if len(lean) == 1:
        return GoalMatch(0, "fuzzy" if scores[0] >= FUZZY_MIN else "none", scores[0])
    if scores[best] < FUZZY_MIN:
        return GoalMatch(None, "none", scores[best], "no_match")
    if scores[best] - scores[order[1]] < FUZZY_MARGIN:
        tagged = [i for i in order if scores[best] - scores[i] < FUZZY_MARGIN and wanted.case
                  and lean[i].case == wanted.case]
        if len(tagged) == 1:
            return GoalMatch(tagged[0], "fuzzy", scores[tagged[0]])
        return GoalMatch(None, "none", scores[best], "ambiguous")
    return GoalMatch(best, "fuzzy", scores[best])


def state_quality(lean: Sequence[Goal], wanted: Sequence[Goal], dropped: Sequence[Hypothesis] = ()) -> str:
    """How Lean's whole state compares with a traced one: the worst goal's quality, ``none`` when the
    numbers of goals differ."""
    if len(lean) != len(wanted):
        return "none"
    worst = 0
    for g, w in zip(lean, wanted):
        m = best_goal((g,), w, dropped)
        worst = max(worst, QUALITIES.index(m.quality))
    return QUALITIES[worst]
