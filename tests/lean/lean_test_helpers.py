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
