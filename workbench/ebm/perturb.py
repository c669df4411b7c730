"""No-progress siblings made from a proof state: pure functions on canonical state text.

Each kind is what a real tactic that proves nothing would leave behind on the main (first) goal; the
goal's target and every other goal are kept, so the perturbed state is exactly as provable as the
original and no closer to QED. A value model that ranks a traced child below such a sibling rewards
the look of progress (one more hypothesis, a new name) instead of progress.

  true_hyp       ``have : True := trivial``       appends ``this : True``
  refl_hyp       ``have : x = x := rfl``          appends ``this : x = x`` for a named hypothesis x
  duplicate_hyp  ``have := h``                    appends ``this : T`` where ``h : T``
  shadow_hyp     ``have h := h``                  the old ``h`` becomes ``h✝``, a new ``h : T`` is appended
  rename_hyp     ``rename' h => h'``              h renamed wherever it occurs
  reorder_hyps   ``revert h; intro h``            h (no later hypothesis depends on it) moves to the end

Names follow Lean's goal display: a new hypothesis named like an existing one shadows it, and shadowed
names print with ``✝`` (the most recent shadowed one ``x✝``, older ones ``x✝¹``, ``x✝²``, ...; references
in other hypotheses and the target follow the rename). Inaccessible hypotheses (``inst✝``) cannot be
named by a tactic, so kinds that name one pick among the accessible ones only. ``perturb`` returns None
when a kind does not apply (e.g. no accessible hypothesis); the choice of hypothesis is a seeded
function of (state, kind, seed).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

from workbench.lean.binders import base_name, sanitize_names
from workbench.states import INACCESSIBLE_MARK, Goal, Hypothesis, name_pattern, parse_state, render_state, rename_all


def _mentions(text: str, name: str) -> bool:
    return name_pattern(name).search(text) is not None


def _rename_everywhere(goal: Goal, renames: Mapping[str, str]) -> Goal:
    """``goal`` with hypotheses and references renamed at once (``renames``: old name -> new name)."""
    hyps = tuple(Hypothesis(name=renames.get(h.name, h.name), type=rename_all(h.type, renames),
                            value=None if h.value is None else rename_all(h.value, renames)) for h in goal.hypotheses)
    return Goal(target=rename_all(goal.target, renames), hypotheses=hyps, case=goal.case)


def _introduce(goal: Goal, name: str, type_: str) -> Goal:
    """``goal`` with a new hypothesis ``name : type_`` appended; the hypotheses it shadows are renamed as Lean
    displays them (``lean.binders.sanitize_names``), references following."""
    entries = [(base_name(h.name), INACCESSIBLE_MARK in h.name, h.type, h.value) for h in goal.hypotheses]
    named = sanitize_names([*entries, (name, False, type_, None)])
    renames = {h.name: n.name for h, n in zip(goal.hypotheses, named) if base_name(h.name) == name and h.name != n.name}
    goal = _rename_everywhere(goal, renames)
    return Goal(target=goal.target, hypotheses=goal.hypotheses + (named[-1],), case=goal.case)


def _accessible(goal: Goal) -> list[int]:
    return [i for i, h in enumerate(goal.hypotheses) if h.name and INACCESSIBLE_MARK not in h.name]


def _fresh(goal: Goal, name: str) -> str:
    taken = {h.name for h in goal.hypotheses}
    text = "\n".join([goal.target, *(h.type for h in goal.hypotheses)])
    candidate = name + "'"
    while candidate in taken or _mentions(text, candidate):
        candidate += "'"
    return candidate


# -- the kinds: (main goal, rng) -> perturbed main goal, or None when the kind does not apply -------------
def _true_hyp(goal: Goal, rng: random.Random) -> Goal | None:
    return _introduce(goal, "this", "True")


def _refl_hyp(goal: Goal, rng: random.Random) -> Goal | None:
    named = _accessible(goal)
    if not named:
        return None
    x = goal.hypotheses[rng.choice(named)].name
    return _introduce(goal, "this", f"{x} = {x}")


def _duplicate_hyp(goal: Goal, rng: random.Random) -> Goal | None:
    named = _accessible(goal)
    if not named:
        return None
    return _introduce(goal, "this", goal.hypotheses[rng.choice(named)].type)


def _shadow_hyp(goal: Goal, rng: random.Random) -> Goal | None:
    named = _accessible(goal)
    if not named:
        return None
    h = goal.hypotheses[rng.choice(named)]
    return _introduce(goal, h.name, h.type)


def _rename_hyp(goal: Goal, rng: random.Random) -> Goal | None:
    named = _accessible(goal)
    if not named:
        return None
    old = goal.hypotheses[rng.choice(named)].name
    return _rename_everywhere(goal, {old: _fresh(goal, old)})


def _reorder_hyps(goal: Goal, rng: random.Random) -> Goal | None:
    hyps = goal.hypotheses
    movable = [i for i in _accessible(goal) if i < len(hyps) - 1
               and not any(_mentions(h.type, hyps[i].name) or (h.value and _mentions(h.value, hyps[i].name))
                           for h in hyps[i + 1:])]
    if not movable:
        return None
    i = rng.choice(movable)
    return Goal(target=goal.target, hypotheses=hyps[:i] + hyps[i + 1:] + (hyps[i],), case=goal.case)


KINDS: dict[str, Callable[[Goal, random.Random], Goal | None]] = {
    "true_hyp": _true_hyp,
    "refl_hyp": _refl_hyp,
    "duplicate_hyp": _duplicate_hyp,
    "shadow_hyp": _shadow_hyp,
    "rename_hyp": _rename_hyp,
    "reorder_hyps": _reorder_hyps,
}
PERTURBATION_KINDS: tuple[str, ...] = tuple(KINDS)
RECORD_KIND_PREFIX = "perturbation:"  # record_kind of a made-up sibling in training records (ebm.data)
# Training never sees HELD_OUT_KINDS, and they share no surface mark with the training kinds: every
# training kind appends a hypothesis named ``this``, no held-out kind does (they shadow, rename or move a
# hypothesis the state already has). A first split that held out refl_hyp beside two ``this`` kinds let a
# model pass it by the name ``this`` alone (validation split, README).
TRAIN_KINDS: tuple[str, ...] = ("true_hyp", "refl_hyp", "duplicate_hyp")
HELD_OUT_KINDS: tuple[str, ...] = ("shadow_hyp", "rename_hyp", "reorder_hyps")


def check_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown perturbation kind(s) {unknown}; known: {list(PERTURBATION_KINDS)}")
    return tuple(kinds)


def perturb(state: str, kind: str, seed: int = 0) -> str | None:
    """The canonical text of ``state`` after a no-progress step of ``kind`` on its main goal, or None when
    the kind does not apply (no goal, no accessible hypothesis, nothing movable, or no change)."""
    check_kinds((kind,))
    try:
        goals = parse_state(state)
    except ValueError:
        return None
    if not goals:
        return None
    changed = KINDS[kind](goals[0], random.Random(f"{seed}:{kind}:{state}"))
    if changed is None:
        return None
    out = render_state((changed, *goals[1:]))
    return None if out == render_state(goals) else out


__all__ = ["HELD_OUT_KINDS", "PERTURBATION_KINDS", "RECORD_KIND_PREFIX", "TRAIN_KINDS", "check_kinds", "perturb"]
