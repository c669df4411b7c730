"""How a walk reaches the trace's first state: ``copyFrom`` gives the ∀-type, one ``intro`` of Lean's binders.

``copyFrom`` gives the constant's whole type with an empty context (Pantograph ``Repl.lean`` v0.3.4
L374-377, ``GoalState.create cInfo.type``); LeanDojo's first state has the binders as hypotheses. The
binders are Lean's, read from the root's s-expression (``printExprAST``; ``binders.telescope``), not the
trace's list: the traces come from an older Lean whose first states keep every section ``variable``, used
or not. Each binder gets the name the trace gives it (``_`` where the trace shows it inaccessible or not
at all); trace hypotheses with no binder are the theorem's *dropped variables*, counted and removed from
every traced goal before it is compared with Lean's (``ctx.dropped``).
"""

from __future__ import annotations

import functools
from pathlib import Path

from workbench.lean.backend import LeanSession
from workbench.lean.binders import intro_tactic, plan_intro, telescope
from workbench.lean.errors import LeanBackendError, LeanGarbage, LeanProtocolError
from workbench.lean.printer import state_quality
from workbench.lean.results import Advanced, Node
from workbench.mining.labels import Outcome
from workbench.mining.walk.context import WalkContext, messages
from workbench.scope import declaration_line, file_scope
from workbench.states import Goal, parse_state

__all__ = ["introduce", "enter_file_scope"]

_START = {"exact": "matched", "normalised": "normalised", "fuzzy": "fuzzy", "none": "mismatch"}


async def _lean_binders(ctx: WalkContext, session: LeanSession) -> str | None | Outcome:
    """The root's s-expression; None when the server gives none (or refuses printExprAST); Outcome.INFRA_ERROR
    when the process kept failing."""
    for _ in range(ctx.params.infra_retries + 1):
        try:
            return await session.root_ast()
        except LeanGarbage as e:  # the process was killed: the session re-pins; try again
            ctx.message = f"printExprAST: {e}"
            ctx.counts.infra_garbage += 1
        except LeanProtocolError as e:  # an {"error": …} reply: the server refuses; read the trace's names instead
            ctx.message = f"printExprAST: {e}"
            return None
        except LeanBackendError as e:  # died / timed out: the session re-pins; try again
            ctx.message = f"printExprAST: {type(e).__name__}: {e}"
            ctx.counts.infra_process_error += 1
    return Outcome.INFRA_ERROR


@functools.lru_cache(maxsize=64)
def _source(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


async def enter_file_scope(ctx: WalkContext, session: LeanSession) -> None:
    """Before ``goal.start``: the REPL takes the theorem's file scope (its ``namespace``/``open``/``variable``…
    lines before the theorem, :func:`workbench.scope.file_scope`), so tactics elaborate and states print as
    in the file. Where that is not possible — no file, theorem not found in it, Lean rejects the prelude —
    the theorem starts as without ``--source-root``; ``ctx.scope`` and ``counts.start_scope`` say which."""
    thm = ctx.theorem
    text = _source(str(Path(ctx.params.source_root, thm.file_path))) if thm.file_path else None  # type: ignore[arg-type]
    line = declaration_line(text, thm.full_name, thm.start_line) if text is not None else None
    if text is None:
        ctx.scope = "no_file"
    elif line is None:
        ctx.scope = "not_found"
    else:
        try:
            errors = await session.set_scope(file_scope(text, line))
        except LeanBackendError as e:  # the session re-pins on its next request; start without the scope
            errors = (f"{type(e).__name__}: {e}",)
        ctx.scope = "header_failed" if errors else "file_scope"
        if errors:
            ctx.message = f"file scope of {thm.file_path}: {str(errors[0])[:200]}"
    ctx.counts.start_scope[ctx.scope] += 1


async def introduce(ctx: WalkContext, session: LeanSession, root: Node) -> Node | None:
    """Move Lean's binders into the context, named as the trace's first state names them.

    The ``intro`` is setup, not a proof step: it makes no record. Whatever Lean reached is where the walk
    goes on; ``ctx.start`` says how (binders from Lean or the trace, dropped variables, and how the state
    compares with the trace's first state). Returns None when the process failed (infrastructure).
    """
    try:
        first: tuple[Goal, ...] | None = parse_state(ctx.theorem.steps[0].state_before)
    except ValueError:
        first = None
    ctx.start = {"intro": None, "problem": None, "binders": None}
    if ctx.scope is not None:
        ctx.start["scope"] = ctx.scope
    node = root
    if first and ctx.params.introduce_binders:
        sexp = await _lean_binders(ctx, session)
        if sexp is Outcome.INFRA_ERROR:
            return None
        tactic = _plan(ctx, sexp, first[0]) if isinstance(sexp, str) else None
        if ctx.start["binders"] is None:  # no s-expression: the trace's own list (an older server)
            ctx.start["binders"] = "trace"
            ctx.counts.binders_from_trace += 1
            tactic = intro_tactic(first[0])
        ctx.start["intro"] = tactic
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
    elif ctx.start["problem"] is None:
        quality = state_quality(node.goals, first, ctx.dropped)
        ctx.start["quality"] = quality
        ctx.start["problem"] = None if quality == "exact" else _START[quality]
    ctx.counts.start[ctx.start["problem"] or "matched"] += 1
    return node


def _plan(ctx: WalkContext, sexp: str, first: Goal) -> str | None:
    """The ``intro`` of Lean's binders (None: nothing to introduce), recording the pairing in ``ctx``."""
    try:
        binders = telescope(sexp)
    except ValueError as e:
        ctx.message = f"unreadable root s-expression: {e}"
        return None  # ctx.start["binders"] stays None: the caller falls back to the trace's names
    plan = plan_intro(binders, first)
    ctx.dropped = plan.dropped
    ctx.start.update(binders="lean", dropped=[h.name for h in plan.dropped], unnamed=plan.unnamed,
                     left_in_target=plan.left_in_target)
    ctx.counts.binders_from_lean += 1
    ctx.counts.binders_introduced += len(plan.names)
    ctx.counts.binders_dropped += len(plan.dropped)
    ctx.counts.binders_unnamed += plan.unnamed
    return plan.tactic
