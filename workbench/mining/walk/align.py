"""Which of Lean's goals a ground-truth step works on. Lean's state is the truth, the trace a hint.

LeanDojo shows only the focused goal inside ``·``/``case`` blocks, and prints it as the traces' (older)
Lean did, so the goal is found by comparing texts (:func:`workbench.lean.printer.best_goal`): one goal →
that goal; several → exact text, then text with the known printer differences normalised and the
theorem's dropped variables removed, then the most similar one if it is plausible (a similarity of at
least ``FUZZY_MIN`` and ``FUZZY_MARGIN`` ahead of the runner-up). Every aligned step records its quality;
a step none of whose goals plausibly is the traced one ends the walk ``unaligned``.
"""

from __future__ import annotations

from workbench.lean.printer import best_goal, comparable
from workbench.lean.results import Node
from workbench.mining.walk.context import WalkContext
from workbench.states import parse_state

__all__ = ["align", "check_after"]


def _goals(text: str | None) -> tuple:
    try:
        return parse_state(text or "")
    except ValueError:
        return ()


def align(ctx: WalkContext, node: Node, index: int, *, nested: bool = False) -> int | None:
    """Index of the goal in Lean's list that step ``index``'s ``state_before`` works on (its first goal),
    None when no goal plausibly is that one (counted by reason, ``ctx.message`` says which). ``nested``: the
    step is written inside an earlier one; if its goal is missing, that tactic ran it (skipped, counted)."""
    wanted = _goals(ctx.theorem.steps[index].state_before)
    if not ctx.params.align_goals:
        return 0  # the reference's walk: always the main goal
    if not wanted:
        ctx.align.append("none")  # an unparseable trace state: the main goal, as the reference did
        ctx.counts.align_quality["none"] += 1
        return 0
    match = best_goal(node.goals, wanted[0], ctx.dropped)
    if nested and match.quality == "none":  # (even Lean's only goal: the enclosing tactic's goal is another)
        ctx.counts.align_nested_skipped += 1
        return None
    ctx.align.append(match.quality)
    ctx.counts.align_quality[match.quality] += 1
    if match.index is None:
        ctx.counts.align_unaligned[match.reason or "no_match"] += 1
        ctx.message = (f"step {index}: no goal among Lean's {len(node.goals)} is the traced one "
                       f"({match.reason}, best similarity {match.score:.2f})")
    return match.index


def check_after(ctx: WalkContext, node: Node, index: int) -> None:
    """Goal by goal: every goal the trace's ``state_after`` shows should be open in Lean's state (compared
    after normalising printer differences)."""
    lean = {comparable(g) for g in node.goals}
    if any(comparable(g, ctx.dropped) not in lean for g in _goals(ctx.theorem.steps[index].state_after)):
        ctx.counts.align_after_mismatch += 1
