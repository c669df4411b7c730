"""How a walk reaches the trace's first state: ``copyFrom`` gives the ∀-type, one ``intro`` undoes it."""

from __future__ import annotations

from workbench.lean.backend import LeanSession
from workbench.lean.binders import intro_tactic
from workbench.lean.results import Advanced, Node
from workbench.mining.labels import Outcome
from workbench.mining.walk.context import WalkContext, messages
from workbench.states import parse_state, render_state

__all__ = ["introduce"]


async def introduce(ctx: WalkContext, session: LeanSession, root: Node) -> Node | None:
    """Move the signature's binders into the context as the trace's first state has them.

    ``copyFrom`` gives the constant's whole type with an empty context (SPEC §1); LeanDojo's first
    state has the binders as hypotheses. One ``intro`` with the trace's names (``_`` for an
    inaccessible one) is setup, not a proof step: it makes no record. Whatever Lean reached is where
    the walk goes on; ``ctx.start`` says whether it is the trace's first state and if not, why.
    Returns None when the process failed (infrastructure).
    """
    try:
        first = parse_state(ctx.theorem.steps[0].state_before)
    except ValueError:
        first = None
    tactic = intro_tactic(first[0]) if first and ctx.params.introduce_binders else None
    ctx.start = {"intro": tactic, "problem": None}
    node = root
    if tactic is not None:
        sent = await ctx.send(session, root, 0, 0, "intro", tactic, retry_timeouts=True)
        result = sent.result
        ok = isinstance(result, Advanced)
        ctx.log(sent, "intro" if ok else "intro_failed")
        if isinstance(result, Outcome):
            ctx.message = f"intro: {sent.err}"
            return None
        if ok:
            node = result.node
        else:
            ctx.start["problem"] = "intro_failed"
            ctx.message = f"{tactic!r}: {messages(result)}"
    if first is None:
        ctx.start["problem"] = "unparseable_first_state"
    elif ctx.start["problem"] is None and render_state(node.goals) != render_state(first):
        ctx.start["problem"] = "mismatch"
    ctx.counts.start[ctx.start["problem"] or "matched"] += 1
    return node
