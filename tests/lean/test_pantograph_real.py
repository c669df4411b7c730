"""The same client against a real Pantograph REPL.

Skipped unless ``PANTOGRAPH_REPL`` holds the command line that starts it, e.g.
``PANTOGRAPH_REPL="lake env repl"`` run from a Lean project (set ``PANTOGRAPH_CWD`` to that project),
or the path to the ``repl`` binary with ``LEAN_PATH`` exported. ``PANTOGRAPH_IMPORTS`` (default
``Init``) lists the modules to import; with ``Mathlib`` the Mathlib-specific checks run too.
"""

from __future__ import annotations

import os
import shlex

import pytest

from workbench.lean import (
    TheoremSession,
    Advanced,
    LeanConfig,
    LeanError,
    LeanPool,
    LeanProtocolError,
    ParseError,
    ProofComplete,
    Rejected,
)

pytestmark = [
    pytest.mark.pantograph,
    pytest.mark.skipif(not os.environ.get("PANTOGRAPH_REPL"), reason="PANTOGRAPH_REPL is not set"),
]


@pytest.fixture
def config() -> LeanConfig:
    imports = tuple(os.environ.get("PANTOGRAPH_IMPORTS", "Init").split())
    return LeanConfig(
        command=tuple(shlex.split(os.environ["PANTOGRAPH_REPL"])),
        imports=imports,
        cwd=os.environ.get("PANTOGRAPH_CWD") or None,
        workers=1,
        request_timeout_s=120.0,
        start_timeout_s=600.0,
        memory_limit_bytes=None if os.environ.get("PANTOGRAPH_NO_MEMORY_LIMIT") else 16 * 1024**3,
    )


async def test_real_repl_outcomes(config):
    async with LeanPool(config) as pool:
        assert pool.version and "simulator" not in pool.version
        async with TheoremSession(pool, "nat_refl") as s:
            root = await s.start(expr="∀ (n : Nat), n = n")
            assert root.state_text == "⊢ ∀ (n : Nat), n = n"
            intro = await s.tactic(root, "intro n")
            assert isinstance(intro, Advanced) and intro.node.state_text == "n : Nat\n⊢ n = n"
            assert isinstance(await s.tactic(intro.node, "rfl"), ProofComplete)
            assert isinstance(await s.tactic(intro.node, "sorry"), Rejected)
            assert isinstance(await s.tactic(intro.node, "exact (foo"), ParseError)
            err = await s.tactic(intro.node, "exact foo_bar_baz")
            assert isinstance(err, LeanError) and "foo_bar_baz" in err.text
        async with TheoremSession(pool, "Nat.add_comm") as s:
            root = await s.start()
            assert "∀ (n m : Nat), n + m = m + n" in root.state_text.replace("ℕ", "Nat")
        async with TheoremSession(pool, "missing") as s:
            with pytest.raises(LeanProtocolError):
                await s.start(copy_from="No.such_theorem_anywhere")
        proc = pool._slots[0].process
        assert (await proc.stat()).n_goals == 0  # every session deleted its states


async def test_real_repl_recovers_from_a_kill(config):
    async with LeanPool(config) as pool:
        async with TheoremSession(pool, "nat_refl") as s:
            root = await s.start(expr="∀ (n : Nat), n = n")
            node = (await s.tactic(root, "intro n")).node
            pool._slots[0].process._kill_now("killed")  # as if the OOM killer struck
            assert isinstance(await s.tactic(node, "rfl"), ProofComplete)  # replayed on a new process
        assert pool.stats().restarts_by_cause == {"killed": 1}


async def test_real_repl_root_ast_gives_leans_binders(config):
    """Issue 19: the walk reads Lean's binders from copyFrom's root with printExprAST (Delate.lean v0.3.4)."""
    from workbench.lean.binders import telescope

    async with LeanPool(config) as pool:
        async with TheoremSession(pool, "Nat.le_of_succ_le") as s:
            root = await s.start()
            binders = telescope(await s.root_ast())
            assert [(b.name, b.info) for b in binders] == [("n", "implicit"), ("m", "implicit"), ("h", "default")]
            intro = await s.tactic(root, "intro n m h")
            assert isinstance(intro, Advanced) and intro.node.goals[0].hypotheses[-1].name == "h"
