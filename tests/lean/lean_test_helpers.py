"""Helpers shared by the Lean tests."""

from __future__ import annotations

import asyncio


async def until(condition, timeout_s: float = 10.0) -> None:
    """Yield to the event loop until ``condition()`` holds (a state check, not a timed sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0)


async def first_state(session, thm):
    """copyFrom's ∀-root, then the walk's `intro` of Lean's binders named as the trace's first state names
    them (retried on infrastructure errors, for the chaos tests)."""
    from workbench.lean import Advanced, LeanBackendError
    from workbench.lean.binders import plan_intro, telescope
    from workbench.states import parse_state

    for _ in range(20):
        try:
            root = await session.start()
            goals = parse_state(thm.steps[0].state_before)
            intro = plan_intro(telescope(await session.root_ast()), goals[0]).tactic if goals else None
            if intro is None:
                return root
            result = await session.tactic(root, intro)
            assert isinstance(result, Advanced), (thm.full_name, intro, result)
            return result.node
        except LeanBackendError:
            continue
    raise AssertionError("start kept failing")
