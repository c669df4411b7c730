"""Which of Lean's goals a ground-truth step works on (LeanDojo shows only the focused goal)."""

from __future__ import annotations

from workbench.lean.results import Node
from workbench.mining.walk.context import WalkContext
from workbench.states import render_state
from workbench.trace_breaks import goal_texts

__all__ = ["align", "check_after"]


def align(ctx: WalkContext, node: Node, index: int) -> int | None:
    """Index of the goal in Lean's list that step ``index``'s ``state_before`` works on (its first goal),
    None when Lean has no such goal. LeanDojo shows only the focused goal inside ``·``/``case`` blocks,
    so the goal can be anywhere in Lean's list."""
    wanted = goal_texts(ctx.theorem.steps[index].state_before)
    if not wanted or not ctx.params.align_goals:
        return 0  # an unparseable trace state: apply to the main goal, as the reference did
    lean = [render_state((g,)) for g in node.goals]
    if wanted[0] in lean:
        return lean.index(wanted[0])
    # A trace that starts inside a `case` block tags a goal Lean (after copyFrom + intro) leaves untagged.
    untagged = [_untagged(t) for t in lean]
    if _untagged(wanted[0]) in untagged:
        ctx.counts.align_matched_without_case_tag += 1
        return untagged.index(_untagged(wanted[0]))
    return None


def check_after(ctx: WalkContext, node: Node, index: int) -> None:
    """Goal by goal: every goal the trace's ``state_after`` shows should be open in Lean's state."""
    expected = goal_texts(ctx.theorem.steps[index].state_after)
    lean = {render_state((g,)) for g in node.goals}
    if any(g not in lean for g in expected):
        ctx.counts.align_after_mismatch += 1


def _untagged(goal_text: str) -> str:
    return goal_text.split("\n", 1)[1] if goal_text.startswith("case ") else goal_text
