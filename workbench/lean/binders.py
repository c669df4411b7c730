"""The theorem's signature as Pantograph starts it, and the ``intro`` that undoes it (pure).

Two directions. The walk reads Lean's own binders from the root's s-expression (:func:`telescope`,
Pantograph's ``printExprAST``) and names each as the trace's first state does (:func:`plan_intro`); trace
hypotheses Lean's type lacks (an older Lean kept unused section variables) are *dropped variables*. The
simulator goes the other way: from a first-state goal to the ∀-target Lean prints (:func:`forall_target`)
and its s-expression (:func:`forall_sexp`).

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
           "sanitize_names", "LeanBinder", "parse_sexp", "telescope", "IntroPlan", "plan_intro", "forall_sexp"]

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


# --- Lean's binders, read from Pantograph's s-expression (printExprAST) ---------------------------------
#
# Grammar (lenianiva/Pantograph v0.3.4 ``Pantograph/Delate.lean`` L394-440, ``serializeExpressionSexp``):
# ``(:forall NAME TYPE BODY)`` with `` :i`` / `` :si`` / `` :ii`` appended for implicit, strict-implicit and
# instance binders, ``(:let NAME TYPE VALUE BODY)``; NAME has its macro scopes erased (``inst✝`` → ``inst``)
# and is printed by ``Name.toString`` (``«»`` around odd components); bound variables are de Bruijn indices;
# string literals are C-quoted (``(:lit "a\"b")``).

_INFOS = {"": "default", ":i": "implicit", ":si": "strict_implicit", ":ii": "instance"}


@dataclass(frozen=True, slots=True)
class LeanBinder:
    name: str  # as Lean names it, macro scopes erased (``inst`` for ``[Field α]``)
    info: str  # default | implicit | strict_implicit | instance | let
    # A summary of the binder's type, to tell apart binders of one name (``inst``): the head constant of
    # the type (``TopologicalSpace``), whether it is a sort, and the earlier binders it mentions.
    head: str | None = None
    sort: bool = False
    mentions: tuple[str, ...] = ()


def _tokens(text: str) -> list[str]:
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            out.append(ch)
            i += 1
        elif ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "()":
                if text[j] == "«":  # an escaped name component may hold spaces or parentheses
                    k = text.find("»", j)
                    j = n if k < 0 else k
                j += 1
            out.append(text[i:j])
            i = j
    return out


def parse_sexp(text: str) -> str | list:
    """One s-expression → nested lists of atoms. Raises ValueError when unbalanced."""
    stack: list[list] = [[]]
    for tok in _tokens(text):
        if tok == "(":
            stack.append([])
        elif tok == ")":
            if len(stack) == 1:
                raise ValueError(f"unbalanced ')' in s-expression: {text[:200]!r}")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok)
    if len(stack) != 1 or len(stack[0]) != 1:
        raise ValueError(f"not one s-expression: {text[:200]!r}")
    return stack[0][0]


def _unescape(name: str) -> str:
    return name.replace("«", "").replace("»", "")


_BINDING = {":forall": 3, ":lambda": 3, ":let": 4}  # binding form -> index of its body


def _referenced(node: str | list, depth: int, found: set[int]) -> None:
    """De Bruijn indices in ``node`` that point past its own ``depth`` binders (as outer distances)."""
    if isinstance(node, str):
        if node.isdigit() and int(node) >= depth:
            found.add(int(node) - depth)
        return
    if node and node[0] in (":lit", ":c", ":sort", ":fv", ":mv", ":mvd"):
        return
    if node and node[0] == ":proj":  # (:proj TypeName idx e): idx is a field number, not a variable
        node = node[3:]
    body = _BINDING.get(node[0]) if node and isinstance(node[0], str) else None
    for k, child in enumerate(node[1:] if body is not None else node, start=1 if body is not None else 0):
        if body is not None and k == 1:
            continue  # the binder's name
        _referenced(child, depth + (body is not None and k == body), found)


def _summary(name: str, info: str, typ: str | list, outer: Sequence[LeanBinder]) -> LeanBinder:
    head = None
    if isinstance(typ, list) and typ:
        fn = typ[0] if isinstance(typ[0], list) else typ
        if len(fn) == 2 and fn[0] == ":c" and isinstance(fn[1], str):
            head = _unescape(fn[1])
    found: set[int] = set()
    _referenced(typ, 0, found)
    mentions = tuple(outer[len(outer) - 1 - d].name for d in sorted(found, reverse=True) if d < len(outer))
    return LeanBinder(name, info, head, isinstance(typ, list) and typ[:1] == [":sort"], mentions)


def telescope(sexp: str) -> tuple[LeanBinder, ...]:
    """The leading ∀/let binders of a target's s-expression, outermost first: names and kinds exactly, and
    a summary of each type (head constant, sort, the earlier binders it mentions) to pair binders of one
    name with the trace's hypotheses; the type itself is never compared with the trace's text."""
    node, out = parse_sexp(sexp), []
    while isinstance(node, list) and node and node[0] in (":forall", ":let"):
        if node[0] == ":forall" and len(node) in (4, 5) and isinstance(node[1], str):
            info = node[4] if len(node) == 5 else ""
            if info not in _INFOS:
                raise ValueError(f"unknown binder info {info!r}")
            out.append(_summary(_unescape(node[1]), _INFOS[info], node[2], out))
            node = node[3]
        elif node[0] == ":let" and len(node) == 5 and isinstance(node[1], str):
            out.append(_summary(_unescape(node[1]), "let", node[2], out))
            node = node[4]
        else:
            raise ValueError(f"malformed binder {str(node)[:200]!r}")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class IntroPlan:
    """How the walk introduces Lean's binders so that its state stands where the trace's first state does."""

    names: tuple[str, ...]  # one per introduced binder: the trace's name, ``_`` for inaccessible/unshown
    dropped: tuple[Hypothesis, ...]  # trace hypotheses that are no binder of Lean's type
    unnamed: int  # introduced binders the trace does not show (named ``_``)
    left_in_target: int  # binders after the last one the trace shows (its target still quantifies them)

    @property
    def tactic(self) -> str | None:
        return f"intro {' '.join(self.names)}" if self.names else None


def _same_binder(b: LeanBinder, h: Hypothesis) -> bool:
    if (b.info == "let") != (h.value is not None):
        return False
    base = base_name(h.name)
    # An anonymous instance binder is `inst✝` in both Lean versions; match any inaccessible `inst…` to it.
    return base == b.name or (b.info == "instance" and INACCESSIBLE_MARK in h.name and base.startswith("inst"))


def _fit(b: LeanBinder, h: Hypothesis) -> int:
    """How well a binder's type summary fits a hypothesis' type text, 0-3 (only ranks pairings of one name):
    the head constant is the text's first name (last components: the trace prints with its file's
    namespaces open), both are sorts, and the share of mentioned binders the text names."""
    words = _IDENT.findall(h.type)
    score = 0
    if b.head is not None and words and words[0].rpartition(".")[2] == b.head.rpartition(".")[2]:
        score += 1
    if b.sort and _SORT.match(collapse(h.type)):
        score += 1
    named = [m for m in b.mentions if m != "inst"]  # instance arguments are implicit in the printed type
    if named:
        score += round(2 * sum(m in words for m in named) / len(named))
    return score


def plan_intro(binders: Sequence[LeanBinder], goal: Goal) -> IntroPlan:
    """Pair Lean's binders with the first state's hypotheses, in order: the order-preserving matching with
    the most pairs, then the best-fitting types (which of several ``inst✝`` a binder is), then the fewest
    binders left unnamed between pairs; among those the earlier trace hypotheses are dropped (unused
    section variables come first, and a shadowed ``n✝`` yields to the ``n`` the statement uses)."""
    hyps = goal.hypotheses
    nb, nh = len(binders), len(hyps)
    # best[i][j]: (pairs, fit, -gaps) for binders[i:] against hyps[j:]; a gap = a binder skipped before a pair.
    best = [[(0, 0, 0)] * (nh + 1) for _ in range(nb + 1)]

    def take(i: int, j: int) -> tuple[int, int, int] | None:
        if not _same_binder(binders[i], hyps[j]):
            return None
        pairs, fit, gaps = best[i + 1][j + 1]
        return pairs + 1, fit + _fit(binders[i], hyps[j]), gaps

    for i in range(nb - 1, -1, -1):
        for j in range(nh - 1, -1, -1):
            pairs, fit, gaps = best[i + 1][j]
            options = [best[i][j + 1], take(i, j), (pairs, fit, gaps - (pairs > 0))]
            best[i][j] = max(x for x in options if x is not None)
    pairs: dict[int, int] = {}
    i = j = 0
    while i < nb and j < nh:
        here = best[i][j]
        if best[i][j + 1] == here:  # prefer dropping the earlier hypothesis
            j += 1
        elif take(i, j) == here:
            pairs[i] = j
            i, j = i + 1, j + 1
        else:
            i += 1
    last = max(pairs, default=-1)
    names = []
    for k in range(last + 1):
        h = hyps[pairs[k]] if k in pairs else None
        names.append(h.name if h is not None and INACCESSIBLE_MARK not in h.name else "_")
    used = set(pairs.values())
    return IntroPlan(tuple(names), tuple(h for j, h in enumerate(hyps) if j not in used),
                     sum(1 for k in range(last + 1) if k not in pairs), nb - last - 1)


# --- the simulator's s-expression of a ∀-root ---------------------------------------------------------

_INFO_SUFFIX = {"explicit": "", "implicit": " :i", "instance": " :ii"}
_SORT_TEXT = re.compile(r"^(Type|Sort)(?:\s+(\S+))?$")


def _sexp_name(name: str) -> str:
    return name if _IDENT.fullmatch(name) else f"«{name}»"


def _approx_sexp(text: str, bound: Sequence[str]) -> str:
    """A well-formed stand-in for an expression's s-expression: sorts as Lean writes them, every other
    identifier as a constant or a de Bruijn index, applied left to right (not an elaboration)."""
    t = collapse(text)
    if t == "Prop":
        return "(:sort 0)"
    m = _SORT_TEXT.match(t)
    if m:
        level = m.group(2) or "0"
        return f"(:sort {level})" if m.group(1) == "Sort" else f"(:sort (+ {level} 1))" if not level.isdigit() \
            else f"(:sort {int(level) + 1})"
    atoms = []
    for ident in _IDENT.findall(t):
        pos = max((k for k, b in enumerate(bound) if b == ident), default=-1)
        atoms.append(str(len(bound) - 1 - pos) if pos >= 0 else f"(:c {_sexp_name(ident)})")
    if not atoms:
        return "(:lit 0)"
    return atoms[0] if len(atoms) == 1 else f"({' '.join(atoms)})"


def forall_sexp(binders: Sequence[Binder], body: str) -> str:
    """The s-expression Pantograph's ``printExprAST`` would give for ``∀ binders, body``: binder names
    (base names: Lean erases macro scopes) and kinds exactly; types and body approximated (:func:`_approx_sexp`)."""
    names = [b.name for b in binders]
    text = _approx_sexp(body, names)
    for k in range(len(binders) - 1, -1, -1):
        b = binders[k]
        typ = _approx_sexp(b.type, names[:k])
        if b.value is not None:
            text = f"(:let {_sexp_name(b.name)} {typ} {_approx_sexp(b.value, names[:k])} {text})"
        else:
            text = f"(:forall {_sexp_name(b.name)} {typ} {text}{_INFO_SUFFIX[b.kind]})"
    return text
