"""Scripted stand-ins for the Lean session and the policy (labelling rules tested without I/O).

A script maps ``(state text, tactic as sent)`` to an outcome:
``("advance", state_text)``, ``("complete",)``, ``("error", text)``, ``("parse", text)``, ``("sorry",)``,
``("died",)``, ``("timeout",)``, ``("interrupt",)``, ``("heartbeat",)``. A list of outcomes is consumed one per call
(the last one repeats), to script "crashes once, then works".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.lean.errors import LeanProcessDied, LeanTimeout
from workbench.lean.protocol import Message
from workbench.lean.results import (
    Advanced,
    LeanError,
    LeanLimit,
    Node,
    ParseError,
    ProofComplete,
    Rejected,
    TacticTimedOut,
)
from workbench.policy.base import Candidate
from workbench.lean.binders import binders_of, forall_sexp, forall_target, intro_tactic
from workbench.states import Goal, parse_state, render_state
from workbench.traces import TacticStep, Theorem


def theorem(name: str, states: list[str], tactics: list[str]) -> Theorem:
    """states: state_before of each step (len == len(tactics))."""
    steps = []
    for i, (s, t) in enumerate(zip(states, tactics)):
        after = states[i + 1] if i + 1 < len(states) else "no goals"
        steps.append(TacticStep(i, s, t, after))
    return Theorem(name, tuple(steps))


def cand(*tactics: str, score: float = -1.0) -> Candidate:
    return Candidate(tactic=tactics[0], tactics=tuple(tactics), raw_text="\n".join(tactics), score=score,
                     score_kind="logprob")


@dataclass
class FakeSession:
    name: str
    root_state: str
    script: dict[tuple[str, str], Any]
    calls: list[tuple[str, str]] = field(default_factory=list)
    start_error: Exception | None = None
    intro: Any = None  # the outcome of the walk's `intro` (default: it reaches root_state)

    def __post_init__(self) -> None:
        # Like Pantograph's copyFrom: the trace's first state with its hypotheses still bound by a ∀.
        goals = parse_state(self.root_state)
        self.signature = goals
        tactic = intro_tactic(goals[0]) if goals else None
        if tactic is not None:
            self.signature = (Goal(forall_target(binders_of(goals[0]), goals[0].target)),)
            key = (render_state(self.signature), tactic)
            self.script.setdefault(key, self.intro or ("advance", self.root_state))

    async def start(self, *, copy_from=None, expr=None, levels=()) -> Node:
        if self.start_error is not None:
            raise self.start_error
        return Node(self.name, (), self.signature)

    async def root_ast(self) -> str | None:
        """Lean's binders are the first state's hypotheses (the same Lean as the trace)."""
        goals = parse_state(self.root_state)
        return forall_sexp(binders_of(goals[0]), goals[0].target) if goals else None

    async def tactic(self, node: Node, tactic: str, goal_id=None):
        state = node.state_text
        self.calls.append((state, tactic))
        spec = self.script.get((state, tactic), ("error", f"unknown identifier '{tactic.split()[0]}'"))
        if isinstance(spec, list):
            spec = spec.pop(0) if len(spec) > 1 else spec[0]
        kind = spec[0]
        if kind == "advance":
            goals = parse_state(spec[1])
            child = Node(self.name, (*node.path, (tactic, goal_id)), goals)
            return Advanced(child, goals)
        if kind == "complete":
            return ProofComplete(Node(self.name, (*node.path, (tactic, goal_id)), ()))
        if kind == "error":
            return LeanError((Message(spec[1]),))
        if kind == "parse":
            return ParseError(spec[1])
        if kind == "sorry":
            return Rejected(True, False)
        if kind == "died":
            raise LeanProcessDied("simulated crash")
        if kind == "timeout":
            raise LeanTimeout("simulated hang")
        if kind == "interrupt":  # Pantograph's own timeout: a verdict value since issue 9
            return TacticTimedOut()
        if kind == "heartbeat":
            return LeanLimit("heartbeats", "(deterministic) timeout at `whnf`, maximum number of heartbeats (200000) "
                                           "has been reached")
        raise AssertionError(spec)


class FakePool:
    def __init__(self, sessions: dict[str, FakeSession]) -> None:
        self.sessions = sessions

    def theorem(self, name: str):
        pool = self

        class _CM:
            async def __aenter__(self):
                return pool.sessions[name]

            async def __aexit__(self, *exc):
                return None

        return _CM()


class FakePolicy:
    """Candidates by state text (canonical); unknown states get none."""

    def __init__(self, by_state: dict[str, list[Candidate]], *, fail_times: int = 0) -> None:
        self.by_state = by_state
        self.fail_times = fail_times
        self.calls = 0

    async def candidates(self, state_pp: str, n: int, *, theorem: str) -> list[Candidate]:
        self.calls += 1
        if self.fail_times > 0:
            self.fail_times -= 1
            raise RuntimeError("generation failed")
        return list(self.by_state.get(state_pp, []))[:n]

    def provenance(self) -> dict:
        return {"policy": "fake"}

    async def aclose(self) -> None:
        return None
