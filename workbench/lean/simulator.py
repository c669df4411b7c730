"""A stand-in for Pantograph that speaks its protocol (SPEC §1) from LeanDojo traces.

    python -m workbench.lean.simulator --traces PATH [--seed N] [--latency-scale X] [faults...] [IMPORTS...]

It is NOT Lean: ``--version`` says so. By default it is a *newer* Lean than its traces, as every Pantograph
the workbench accepts is (``--lean-version newer``, :mod:`workbench.lean.simversion`): the root lacks the
trace's unused section variables, states print as a current Lean does (``∑ x ∈ s``, ``n + 1``), a seeded
share of referenced lemmas no longer exists; ``--lean-version same`` answers with the trace's own text.
Theorems come from the traces: ``goal.start {"copyFrom": name}`` gives, as Pantograph does, one goal with
an empty context whose target is the signature as a ∀ built from the first traced state's (kept)
hypotheses (``workbench.lean.binders``); with ``options.set {"printExprAST": true}`` every expression also
carries its s-expression, whose binder names and kinds are exact and whose types are approximations
(``binders.forall_sexp``); ``intro`` moves binders into the context, and once they all are the state is
the first traced state (as that Lean prints it). Goal lists are kept as Lean
keeps them: a ground-truth tactic (whitespace-insensitive, optionally wrapped in ``open ... in``) applied
to the goal it was traced on (the main goal or ``goalId``) replaces that goal with the goals its traced
``state_after`` shows, the others stay after them in order; any other tactic gets a deterministic outcome from a
hash of (seed, state, tactic): Lean error / divergent state / proof complete (70/27/3 % by default).
``sorry`` answers ``hasSorry: true``. The namespace mismatch follows LeanDojo's annotated references
(:mod:`workbench.lean.simnamespace`): a ground-truth tactic writing a short name that resolves only in
a namespace it does not ``open ... in`` fails with "unknown identifier '<short name>'".

Goal JSON is built from the trace text via ``workbench.states`` so a ground-truth state reached here
renders to the same canonical text as the trace. Faults (crash / hang / garbage line / slow start)
are injected at configurable rates, or deterministically by the tactics ``__sim_crash__``,
``__sim_hang__`` and ``__sim_garbage__``. Lean's verdicts that Pantograph answers as errors — the heartbeat
limit (``{"error": "core"}``) and its own timeout (``{"error": "internal", "desc": "interrupt"}``) — are
injected per (state, tactic) at ``--heartbeat-rate`` / ``--interrupt-rate``, or by ``__sim_heartbeat__``,
``__sim_recursion__`` and ``__sim_interrupt__``.

``frontend.process`` reads a source file (``--write-sources DIR`` materialises placeholder files for the
theorems it holds, :mod:`workbench.lean.simsource`): each command is a unit; a ``theorem`` it holds yields its
traced steps, printed as this simulator's Lean prints them, as tactic invocations (the tactics come from its
traces, not from the file's text: it elaborates nothing); with ``inheritEnv`` the file's closing scope
(``open`` namespaces, current namespace) becomes the REPL's one scope, which name resolution then uses.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import random
import re
import sys
import time
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Callable, Sequence

from workbench.lean.binders import Binder, binders_of, forall_sexp, forall_target, introduce, sanitize_names
from workbench.lean.simrules import (
    LatencyModel,
    Outcome,
    OutcomeRates,
    classify,
    digest,
    divergent_goals,
    error_text,
    first_identifier,
    is_sorry,
    normalize_tactic,
    parse_problem,
    split_open_prefix,
    unit,
)
from workbench.lean.simnamespace import unresolved_short_name
from workbench.lean.simversion import LEAN_VERSIONS, dropped_variables, gone_lemma, newer_state
from workbench.namespaces import infer_open_namespace, namespaced_references, open_prefixes
from workbench.lean.protocol import InvokedTactic, frontend_data_json, goal_to_pantograph, invocation_goals_text
from workbench.lean.simsource import scope_namespaces, source_text, split_commands
from workbench.states import Goal, collapse, parse_state, render_state

SIMULATOR_VERSION = "workbench-lean-simulator 0.2.0 (simulated Pantograph protocol, not Lean)"
VERSION_MODES = {"newer": "a newer Lean than its traces", "same": "the traces' own Lean"}


def simulator_version(lean_version: str = "newer") -> str:
    """What ``--version`` prints: the simulator, and which Lean it plays (a run's identity records it)."""
    return f"{SIMULATOR_VERSION}; {VERSION_MODES[lean_version]}"


FAULT_TACTICS = {"__sim_crash__": "crash", "__sim_hang__": "hang", "__sim_garbage__": "garbage"}
# Lean's verdicts that Pantograph answers as errors (Repl.lean @0528a15, runCoreM): the process is fine.
HEARTBEATS_DESC = ("(deterministic) timeout at `whnf`, maximum number of heartbeats (200000) has been reached\n"
                   "Use `set_option maxHeartbeats <num>` to set the limit.\n"
                   "Additional diagnostic information may be available using the `set_option diagnostics true` command.")
RECURSION_DESC = ("maximum recursion depth has been reached\nuse `set_option maxRecDepth <num>` to increase limit\n"
                  "use `set_option diagnostics true` to get diagnostic information")
VERDICT_TACTICS = {"__sim_heartbeat__": ("core", HEARTBEATS_DESC), "__sim_recursion__": ("core", RECURSION_DESC),
                   "__sim_interrupt__": ("internal", "interrupt")}


class ReplError(Exception):
    """An ``{"error": kind, "desc": desc}`` reply."""

    def __init__(self, kind: str, desc: str) -> None:
        super().__init__(desc)
        self.kind, self.desc = kind, desc


@dataclass(frozen=True)
class TracedTheorem:
    name: str
    states: tuple[str, ...]  # state_before of each step, then the final state text
    tactics: tuple[str, ...]  # normalised ground-truth tactics
    afters: tuple[str, ...] = ()  # state_after of each step (default: the next state_before)
    # per step: (written, full name) of LeanDojo's annotated references (namespace failures)
    references: tuple[tuple[tuple[str, str], ...], ...] = field(default=(), compare=False)
    file_path: str | None = field(default=None, compare=False)  # the source file the trace names
    statement: str | None = field(default=None, compare=False)

    @cached_property
    def by_goal(self) -> dict[tuple[str, str], int]:
        """(canonical text of the step's main goal, normalised tactic) → step index. The goal also without
        its case tag: Lean runs a tactic the same on an untagged goal (a trace that begins inside a
        ``case`` block shows a tag the introduced root does not have)."""
        out: dict[tuple[str, str], int] = {}
        untagged: dict[tuple[str, str], int] = {}
        for k, tactic in enumerate(self.tactics):
            goals = parse_state(self.states[k])
            if goals:
                out.setdefault((render_state(goals[:1]), tactic), k)
                untagged.setdefault((render_state((replace(goals[0], case=None),)), tactic), k)
        return untagged | out

    def produced(self, k: int) -> tuple[Goal, ...]:
        """The goals step ``k``'s tactic left in place of its main goal.

        LeanDojo's ``state_after`` lists them first, then the other goals its ``state_before`` showed
        (none inside a focused block); those others are dropped here — the simulator keeps its own."""
        before = parse_state(self.states[k])
        after = parse_state(self.afters[k] if self.afters else self.states[k + 1])
        rest = [render_state((g,)) for g in before[1:]]
        texts = [render_state((g,)) for g in after]
        if rest and texts[len(texts) - len(rest):] == rest:
            return after[: len(after) - len(rest)]
        return tuple(g for g, t in zip(after, texts) if t not in rest)

    def closed_alongside(self, k: int) -> frozenset[str]:
        """Other goals step ``k``'s ``state_before`` showed that its ``state_after`` lacks: the tactic
        assigned them too (e.g. ``rw`` after ``convert``: unification solves the side goals), so Lean
        drops them from the list."""
        before = [render_state((g,)) for g in parse_state(self.states[k])[1:]]
        after = {render_state((g,)) for g in parse_state(self.afters[k] if self.afters else self.states[k + 1])}
        return frozenset(t for t in before if t not in after)


@dataclass(slots=True)
class SimState:
    goals: tuple[Goal, ...]
    theorem: TracedTheorem | None = None
    has_sorry: bool = False
    # copyFrom root and its intros: signature binders still in the target, and the introduced context
    binders: tuple[Binder, ...] = ()
    context: tuple[tuple[str, bool, str, str | None], ...] = ()
    body: Goal | None = None  # the first traced goal (target under the binders); None off the signature
    text: str = field(init=False)

    def __post_init__(self) -> None:
        self.text = render_state(self.goals)


@dataclass(frozen=True)
class SimConfig:
    seed: int = 0
    rates: OutcomeRates = OutcomeRates()
    latency: LatencyModel = LatencyModel(scale=0.0)
    namespace_mismatch_rate: float = 0.0  # hash-chosen theorems, only for traces without annotations
    namespace_references: bool = True  # fail short names of unopened namespaces (simnamespace)
    crash_rate: float = 0.0
    hang_rate: float = 0.0
    garbage_rate: float = 0.0
    heartbeat_rate: float = 0.0  # per (state, tactic), deterministic: Lean's heartbeat limit
    interrupt_rate: float = 0.0  # per (state, tactic), deterministic: Pantograph's own timeout
    lean_version: str = "newer"  # newer: a newer Lean than the traces (simversion); same: the traces' Lean
    gone_lemma_rate: float = 0.02  # newer only: share of referenced lemmas that no longer exist (assumed)
    omit_sorry_flags: bool = False  # goal.tactic replies without hasSorry/hasUnsafe/messages (Pantograph < 0.3.1)

    def __post_init__(self) -> None:
        if self.lean_version not in LEAN_VERSIONS:
            raise ValueError(f"lean_version must be one of {LEAN_VERSIONS}, got {self.lean_version!r}")


class Simulator:
    """The REPL's state machine without I/O: ``handle(cmd, payload) -> reply dict``.

    Side effects the loop must perform (faults, latency) come back through ``pending_fault`` and
    ``pending_delay_s``.
    """

    def __init__(self, theorems: dict[str, TracedTheorem], config: SimConfig) -> None:
        self.theorems = theorems
        self.config = config
        self.states: dict[int, SimState] = {}
        self.next_id = 0
        self.uniq = 1
        self.timeout_ms = 0
        self.automatic_mode = False  # recorded only (the simulator always keeps every goal, as automatic mode does)
        self.print_ast = False  # options.set printExprAST: every Expression also carries "sexp"
        # the REPL's one scope (Repl.lean v0.3.4 L21, L45-58): namespaces short names resolve through, set by
        # frontend.process with inheritEnv (L231-235); empty by default
        self.scope_opens: tuple[str, ...] = ()
        self._versioned: dict[str, TracedTheorem] = {}
        self.pending_fault: str | None = None
        self.pending_delay_s = 0.0
        self._fault_rng = random.Random(f"{config.seed}:faults:{os.getpid()}")

    # -- helpers --------------------------------------------------------------------------------

    def _new_state(self, state: SimState) -> int:
        sid = self.next_id
        self.states[sid] = state
        self.next_id += 1
        return sid

    def _goals_json(self, state: SimState) -> list[dict[str, Any]]:
        out = []
        for i, g in enumerate(state.goals):
            obj = goal_to_pantograph(g, name=f"_uniq.{self.uniq}", first_var_id=self.uniq + 1)
            self.uniq += 1 + len(g.hypotheses)
            if self.print_ast:  # Delate.lean v0.3.4 serializeExpression: "sexp" beside "pp" in every Expression
                root = i == 0 and state.body is not None and state.binders
                obj["target"]["sexp"] = (forall_sexp(state.binders, state.body.target) if root  # type: ignore[union-attr]
                                         else forall_sexp((), g.target))
                for var, h in zip(obj["vars"], g.hypotheses):
                    var["type"]["sexp"] = forall_sexp((), h.type)
                    if h.value is not None:
                        var["value"]["sexp"] = forall_sexp((), h.value)
            out.append(obj)
        return out

    @cached_property
    def namespaces(self) -> frozenset[str]:
        """Every namespace the simulator's environment has: prefixes of the names it holds or references."""
        names = set(self.theorems)
        names.update(full for t in self.theorems.values() for refs in t.references for _, full in refs)
        return frozenset(p for n in names for p in open_prefixes(n))

    def theorem(self, name: str) -> TracedTheorem | None:
        """The traced theorem as this simulator's Lean prints it (rewritten once, in newer mode)."""
        thm = self.theorems.get(name)
        if thm is None or self.config.lean_version == "same":
            return thm
        if name not in self._versioned:
            self._versioned[name] = newer_theorem(thm)
        return self._versioned[name]

    def _state(self, payload: dict[str, Any]) -> SimState:
        sid = _int(payload, "stateId")
        if sid not in self.states:
            raise ReplError("index", f"Invalid state index {sid}")
        return self.states[sid]

    def mismatched(self, name: str) -> bool:
        rate = self.config.namespace_mismatch_rate
        if rate <= 0 or infer_open_namespace(name) is None:
            return False
        return unit(digest(self.config.seed, "ns", name), 0) < rate

    def unresolved(self, thm: TracedTheorem, depth: int, opened: Sequence[str], body: str) -> str | None:
        """The short name a ground-truth tactic fails on in copyFrom's context, or None."""
        annotated = any(thm.references)
        opened = (*opened, *self.scope_opens)
        if annotated and self.config.namespace_references:
            return unresolved_short_name(thm.name, thm.references[depth], opened)
        if not annotated and self.mismatched(thm.name) and infer_open_namespace(thm.name) not in opened:
            return first_identifier(body)
        return None

    # -- commands -------------------------------------------------------------------------------

    def handle(self, cmd: str, payload: Any) -> dict[str, Any]:
        self.pending_fault, self.pending_delay_s = None, 0.0
        handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "reset": self.reset,
            "stat": self.stat,
            "options.set": self.options_set,
            "options.print": lambda p: {"timeout": self.timeout_ms, "automaticMode": self.automatic_mode,
                                        "printExprAST": self.print_ast},
            "goal.start": self.goal_start,
            "goal.tactic": self.goal_tactic,
            "goal.print": self.goal_print,
            "goal.delete": self.goal_delete,
            "frontend.process": self.frontend_process,
        }
        if cmd not in handlers:
            return {"error": "command", "desc": f"Unknown command {cmd}"}
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            return {"error": "command", "desc": f"Unable to parse json: payload is not an object: {payload!r}"}
        try:
            reply = handlers[cmd](payload)
        except ReplError as e:
            return {"error": e.kind, "desc": e.desc}
        if self.config.omit_sorry_flags and cmd == "goal.tactic":
            # Before 0.3.1 goal.tactic had no hasSorry/hasUnsafe/messages (SPEC §1; Protocol.lean v0.3.1
            # GoalTacticResult added them): a broken variant for `workbench doctor`'s tests.
            reply = {k: v for k, v in reply.items() if k not in ("hasSorry", "hasUnsafe", "messages")}
        return reply

    def reset(self, payload: dict[str, Any]) -> dict[str, Any]:
        n = len(self.states)
        self.states.clear()
        self.next_id = 0
        return {"nGoals": n}

    def stat(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"nGoals": len(self.states)}

    def options_set(self, payload: dict[str, Any]) -> dict[str, Any]:
        if "timeout" in payload:
            self.timeout_ms = _int(payload, "timeout")
        if "automaticMode" in payload:
            self.automatic_mode = bool(payload["automaticMode"])
        if "printExprAST" in payload:
            self.print_ast = bool(payload["printExprAST"])
        return {}

    def goal_start(self, payload: dict[str, Any]) -> dict[str, Any]:
        copy_from, expr = payload.get("copyFrom"), payload.get("expr")
        if (copy_from is None) == (expr is None):
            raise ReplError("arguments", "Exactly one of {expr, copyFrom} must be supplied")
        levels = payload.get("levels")
        if levels is not None and not (isinstance(levels, list) and all(isinstance(x, str) for x in levels)):
            raise ReplError("command", "Unable to parse json: levels must be an array of strings")
        if copy_from is not None:
            thm = self.theorem(str(copy_from))
            if thm is None:
                raise ReplError("index", f"Symbol not found: {copy_from}")
            state = signature_state(thm, (), binders_of(first_goal(thm)))
        else:
            if not isinstance(expr, str) or not expr.strip():
                raise ReplError("elab", "<Pantograph>:1:0: expected term")
            problem = parse_problem(expr)
            if problem:
                raise ReplError("parsing", problem)
            state = SimState((Goal(collapse(expr)),))
        self.pending_delay_s = self.config.latency.seconds(0.3)
        sid = self._new_state(state)
        root = f"_uniq.{self.uniq}"
        self.uniq += 1
        return {"stateId": sid, "root": root}

    def goal_print(self, payload: dict[str, Any]) -> dict[str, Any]:
        state = self._state(payload)
        goals = self._goals_json(state) if payload.get("goals") else []
        return {"goals": goals, "extraMVars": [], "rootHasSorry": state.has_sorry}

    def goal_delete(self, payload: dict[str, Any]) -> dict[str, Any]:
        ids = payload.get("stateIds")
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise ReplError("command", "Unable to parse json: stateIds must be a list of Nat")
        for i in ids:
            self.states.pop(i, None)
        return {}

    def goal_tactic(self, payload: dict[str, Any]) -> dict[str, Any]:
        state = self._state(payload)
        goal_id = _int(payload, "goalId") if "goalId" in payload else 0
        if "tactic" not in payload:
            raise ReplError("arguments", "the simulator supports only {tactic} in goal.tactic")
        tactic = payload["tactic"]
        if not isinstance(tactic, str):
            raise ReplError("command", "Unable to parse json: tactic must be a string")
        if not 0 <= goal_id < len(state.goals):
            raise ReplError("index", f"Invalid goal index {goal_id}")
        fault = FAULT_TACTICS.get(tactic.strip()) or self._random_fault()
        if fault:
            self.pending_fault = fault
            return {}
        d = digest(self.config.seed, state.text, normalize_tactic(tactic))
        verdict = VERDICT_TACTICS.get(tactic.strip()) or self._verdict(unit(d, 2))
        if verdict:
            raise ReplError(*verdict)
        latency = self.config.latency.seconds(unit(d, 1))
        if self.timeout_ms and latency * 1000 > self.timeout_ms:
            self.pending_delay_s = self.timeout_ms / 1000
            raise ReplError("internal", "interrupt")
        self.pending_delay_s = latency
        return self._tactic(state, goal_id, tactic, d)

    def frontend_process(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Elaborate a source file as far as the simulator can: its commands (:mod:`workbench.lean.simsource`);
        a ``theorem`` it holds yields the traced steps as this simulator's Lean prints them (newer mode: the
        newer text), one invocation per step, written to the ``invocations`` file as Pantograph writes it
        (Repl.lean v0.3.4 L236-239); a theorem it does not hold gets an error message (it cannot elaborate).
        Payload and reply follow Protocol.lean v0.3.4 L361-403; every non-Option field is required, as Lean's
        derived FromJson reads it."""
        for key in ("readHeader", "inheritEnv", "sorrys", "typeErrorsAsGoals", "newConstants"):
            if not isinstance(payload.get(key), bool):
                raise ReplError("command", f"Unable to parse json: Pantograph.Protocol.FrontendProcess.{key}: "
                                           f"expected bool")
        file_name, text = payload.get("fileName"), payload.get("file")
        if (file_name is None) == (text is None):
            raise ReplError("arguments", "Exactly one of {fileName, file} must be supplied")
        if file_name is not None:
            try:
                with open(str(file_name), encoding="utf-8") as f:
                    text = f.read()
            except OSError as e:  # Repl.lean v0.3.4 L282-284: an IO.Error becomes {"error": "io"}
                raise ReplError("io", f"no such file or directory (error code: 2)\n  file: {file_name}"
                                if isinstance(e, FileNotFoundError) else str(e)) from None
            except UnicodeDecodeError:  # Lean's IO.FS.readFile refuses invalid UTF-8 with an IO error too
                raise ReplError("io", f"Tried to read from file '{file_name}' containing invalid UTF-8 data.") from None
        commands = split_commands(str(text), read_header=payload["readHeader"])
        units, invocations = [], []
        for c in commands:
            unit: dict[str, Any] = {"boundary": [c.start, c.end], "messages": []}
            invs: list[InvokedTactic] = []
            new: list[str] = []
            unknown = [ns for ns in c.opens_written if ns not in self.namespaces] if c.kind == "open" else []
            if unknown:  # Lean: `open` of a namespace the environment does not have
                unit["messages"].append(_message(f"unknown namespace '{unknown[0]}'", c.text))
            if c.kind == "import":
                unit["messages"].append(_message("invalid 'import' command, it must be used in the beginning of the file", c.text))
            elif c.kind == "theorem" and c.name is not None:
                thm = self.theorem(c.name)
                if thm is None:
                    unit["messages"].append(_message(f"simulator: {c.name} is not in its traces (it cannot elaborate it)", c.text))
                else:
                    invs = [InvokedTactic(invocation_goals_text(parse_state(thm.states[k])),
                                          invocation_goals_text(parse_state(thm.afters[k] if thm.afters else thm.states[k + 1])),
                                          thm.tactics[k],
                                          tuple(full for _, full in thm.references[k]) if thm.references else ())
                           for k in range(len(thm.tactics))]
                    new = [c.name]
            if payload.get("invocations") is not None:
                unit["nInvocations"] = len(invs)
            if payload["newConstants"]:
                unit["newConstants"] = new
            units.append(unit)
            invocations.append(invs)
        if payload.get("invocations") is not None:
            with open(str(payload["invocations"]), "w", encoding="utf-8") as f:
                f.write(frontend_data_json(invocations))
        if payload["inheritEnv"]:  # the scope open at the end of the file becomes the REPL's
            self.scope_opens = scope_namespaces(str(text))
        self.pending_delay_s = self.config.latency.seconds(0.5) * max(1, sum(len(i) for i in invocations))
        return {"units": units}

    def _verdict(self, u: float) -> tuple[str, str] | None:
        c = self.config
        if u < c.heartbeat_rate:
            return "core", HEARTBEATS_DESC
        if u < c.heartbeat_rate + c.interrupt_rate:
            return "internal", "interrupt"
        return None

    def _random_fault(self) -> str | None:
        c = self.config
        if not (c.crash_rate or c.hang_rate or c.garbage_rate):
            return None
        r = self._fault_rng.random()
        for name, rate in (("crash", c.crash_rate), ("hang", c.hang_rate), ("garbage", c.garbage_rate)):
            if r < rate:
                return name
            r -= rate
        return None

    def _tactic(self, state: SimState, goal_id: int, tactic: str, d: bytes) -> dict[str, Any]:
        flags = {"hasSorry": False, "hasUnsafe": False}
        if not tactic.strip():
            return {"parseError": "<Pantograph>:1:0: unexpected end of input", **flags}
        problem = parse_problem(tactic)
        if problem:
            return {"parseError": problem, **flags}
        others = state.goals[:goal_id] + state.goals[goal_id + 1 :]
        if is_sorry(tactic):
            return self._advance(SimState(others, has_sorry=True), {**flags, "hasSorry": True})
        if state.body is not None and goal_id == 0 and state.binders:
            reply = self._signature_tactic(state, tactic)
            if reply is not None:
                return reply
        thm = state.theorem
        if thm is not None:
            # A traced tactic on the goal it was traced on: the traced successor goals replace that goal,
            # the other goals stay after them in order (Pantograph's automatic mode, Repl.lean @0528a15
            # goal_tactic: resume (nextGoalState.goals ++ goalState.goals)).
            opened, body = split_open_prefix(tactic)
            k = thm.by_goal.get((render_state(state.goals[goal_id : goal_id + 1]), body))
            if k is not None:
                unknown = self.unresolved(thm, k, opened, body)
                if unknown is None and self.config.lean_version == "newer" and thm.references:
                    unknown = gone_lemma(self.config.seed, thm.references[k], self.config.gone_lemma_rate)
                if unknown is not None:
                    return {"messages": [_message(f"unknown identifier '{unknown}'", tactic)], **flags}
                gone = thm.closed_alongside(k)
                kept = tuple(g for g in others if render_state((g,)) not in gone)
                return self._advance(SimState(thm.produced(k) + kept, thm), flags)
        outcome = classify(unit(d, 0), self.config.rates)
        if outcome is Outcome.ERROR:
            return {"messages": [_message(error_text(tactic, state.goals, d), tactic)], **flags}
        if outcome is Outcome.COMPLETE:
            return self._advance(SimState(others, thm), flags)
        return self._advance(SimState(divergent_goals(state.goals, goal_id, d), thm), flags)

    def _signature_tactic(self, state: SimState, tactic: str) -> dict[str, Any] | None:
        """``intro`` on the copyFrom root moves binders into the context; naming a binder that is still
        in the target is ``unknown identifier`` (Lean elaborates the tactic in the goal's context).
        Unlike Lean, a binder introduced under another name is not renamed inside later types."""
        assert state.theorem is not None
        flags = {"hasSorry": False, "hasUnsafe": False}
        m = _INTRO.match(normalize_tactic(tactic))
        if m:
            names = m.group(2).split() if m.group(2) else (["_"] * len(state.binders) if m.group(1) == "intros" else ["_"])
            try:
                entries, rest = introduce(state.binders, names)
            except ValueError as e:
                return {"messages": [_message(str(e), tactic)], **flags}
            return self._advance(signature_state(state.theorem, state.context + entries, rest), flags)
        pending = {b.name for b in state.binders}
        for ident in _IDENTS.findall(tactic):
            if ident in pending:
                return {"messages": [_message(f"unknown identifier '{ident}'", tactic)], **flags}
        return None

    def _advance(self, nxt: SimState, flags: dict[str, bool]) -> dict[str, Any]:
        sid = self._new_state(nxt)
        return {"nextStateId": sid, "goals": self._goals_json(nxt), **flags}


_INTRO = re.compile(r"^(intro|intros)(?:\s+((?:[^\s⟨⟩()]+\s*)+))?$")
_IDENTS = re.compile(r"(?<![\w.'])[^\W\d][\w'!?₀-₉]*")


def newer_theorem(thm: TracedTheorem) -> TracedTheorem:
    """``thm`` as a newer Lean prints it: dropped variables gone from every state, the newer printing."""
    first = parse_state(thm.states[0]) if thm.states else ()
    dropped = dropped_variables(first[0]) if first else ()
    states = tuple(newer_state(s, dropped) for s in thm.states)
    afters = tuple(newer_state(s, dropped) for s in thm.afters)
    return TracedTheorem(thm.name, states, thm.tactics, afters, thm.references, thm.file_path, thm.statement)


def first_goal(thm: TracedTheorem) -> Goal:
    goals = parse_state(thm.states[0])
    return goals[0] if goals else Goal("True")


def signature_state(thm: TracedTheorem, context: tuple[tuple[str, bool, str, str | None], ...],
                    binders: tuple[Binder, ...]) -> SimState:
    """The copyFrom root (no context, the whole signature as a ∀) after ``context`` was introduced.

    Once every binder is in the context the goal prints as the trace's first goal, and ground-truth
    tactics apply to it like to any goal they were traced on."""
    body = first_goal(thm)
    goal = Goal(forall_target(binders, body.target), sanitize_names(context))
    return SimState((goal,), thm, binders=binders, context=context, body=body)


def _int(payload: dict[str, Any], key: str) -> int:
    value = payload.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ReplError("command", f"Unable to parse json: {key} must be a Nat, got {value!r}")
    return value


def _message(text: str, tactic: str) -> dict[str, Any]:
    return {
        "fileName": "<Pantograph>",
        "kind": "[anonymous]",
        "pos": {"line": 1, "column": 0},
        "endPos": {"line": 1, "column": len(tactic)},
        "severity": "error",
        "caption": "",
        "data": text,
    }


def load_theorems(path: str) -> dict[str, TracedTheorem]:
    from workbench.traces import load_traces  # deferred: --version must not need the traces

    out: dict[str, TracedTheorem] = {}
    for thm in load_traces(path, skip_bad=True).theorems:
        states = [s.state_before for s in thm.steps]
        states.append(thm.steps[-1].state_after or "no goals")
        tactics = tuple(normalize_tactic(s.tactic) for s in thm.steps)
        afters = tuple(s.state_after or "no goals" for s in thm.steps)
        refs = tuple(s.references for s in thm.steps)
        out[thm.full_name] = TracedTheorem(thm.full_name, tuple(states), tactics, afters, refs, thm.file_path,
                                           thm.statement)
    return out


def write_sources(theorems: dict[str, TracedTheorem], root: str) -> int:
    """Materialise the simulator's source files: one placeholder per ``file_path`` its traces name, declaring
    that file's theorems in trace order (:func:`workbench.lean.simsource.source_text`). Returns the file count."""
    by_file: dict[str, list[TracedTheorem]] = {}
    for thm in theorems.values():
        if thm.file_path:
            by_file.setdefault(thm.file_path, []).append(thm)
    for rel, thms in by_file.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        # the file compiled, so each short name its proofs write resolved in its scope: open those namespaces
        # the theorems' own `namespace` blocks do not already give
        opens = dict.fromkeys(ref.namespace for t in thms for refs in t.references
                              for ref in namespaced_references(t.name, refs) if not ref.fixed_by_open_retry)
        with open(path, "w", encoding="utf-8") as f:
            f.write(source_text(((t.name, t.tactics, t.statement) for t in thms), opens=tuple(opens)))
    return len(by_file)


# --- process I/O ----------------------------------------------------------------------------------


def parse_command(line: str) -> tuple[str, Any]:
    """``{"cmd": ..., "payload": ...}`` or Pantograph's line mode ``cmd {payload}``."""
    text = line.strip()
    if text.startswith("{"):
        obj = json.loads(text)
        if not isinstance(obj, dict) or not isinstance(obj.get("cmd"), str):
            raise ValueError("expected an object with a string 'cmd'")
        return obj["cmd"], obj.get("payload")
    cmd, _, rest = text.partition(" ")
    return cmd, (json.loads(rest) if rest.strip() else None)


def _write(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def serve(sim: Simulator) -> int:
    stdin = sys.stdin.buffer
    while True:
        raw = stdin.readline()
        line = raw.decode("utf-8", errors="replace")
        if not line.strip():  # EOF or an empty line: the REPL ends, as Pantograph does
            return 0
        try:
            cmd, payload = parse_command(line)
        except ValueError as e:  # json.JSONDecodeError is a ValueError
            _write({"error": "command", "desc": f"Unable to parse json: {e}"})
            continue
        reply = sim.handle(cmd, payload)
        if sim.pending_fault == "crash":
            sys.stderr.write("INTERNAL PANIC: simulated crash (workbench simulator fault injection)\n")
            sys.stderr.flush()
            os._exit(134)
        if sim.pending_fault == "hang":
            while True:
                time.sleep(3600)
        if sim.pending_fault == "garbage":
            sys.stdout.write("PANIC at Lean.Elab.Tactic simulated garbage line\n")
            sys.stdout.flush()
            continue
        if sim.pending_delay_s > 0:
            time.sleep(sim.pending_delay_s)
        _write(reply)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m workbench.lean.simulator",
        description="Simulated Pantograph REPL over LeanDojo traces (not Lean).",
        allow_abbrev=False,
    )
    p.add_argument("--version", action="store_true", help="print the simulator version and exit")
    p.add_argument("--traces", help="LeanDojo JSON / tactic-pairs JSONL file or folder")
    p.add_argument("--lean-version", choices=LEAN_VERSIONS, default="newer",
                   help="newer: a newer Lean than the traces, as every accepted Pantograph is (unused section "
                        "variables dropped, current printing, gone lemmas); same: the traces' own Lean")
    p.add_argument("--gone-lemma-rate", type=float, default=0.02,
                   help="newer only: share of referenced lemmas that no longer exist (seeded; an assumption)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latency-scale", type=float, default=1.0, help="multiplies tactic latency; 0 = instant")
    p.add_argument("--latency-quantiles", default=None, help='e.g. "0.5:0.022,0.95:0.3,0.99:2" (seconds)')
    p.add_argument("--error-rate", type=float, default=0.70)
    p.add_argument("--divergent-rate", type=float, default=0.27)
    p.add_argument("--complete-rate", type=float, default=0.03)
    p.add_argument("--namespace-mismatch-rate", type=float, default=0.0,
                   help="traces without annotated tactics only: fraction of theorems whose ground truth fails")
    p.add_argument("--no-namespace-references", dest="namespace_references", action="store_false",
                   help="do not fail short names that resolve only in an unopened namespace (annotated traces)")
    p.add_argument("--crash-rate", type=float, default=0.0, help="per goal.tactic request")
    p.add_argument("--hang-rate", type=float, default=0.0, help="per goal.tactic request")
    p.add_argument("--garbage-rate", type=float, default=0.0, help="per goal.tactic request")
    p.add_argument("--heartbeat-rate", type=float, default=0.0,
                   help="share of (state, tactic) pairs answered with Lean's heartbeat timeout (deterministic)")
    p.add_argument("--interrupt-rate", type=float, default=0.0,
                   help="share of (state, tactic) pairs answered with Pantograph's interrupt (deterministic)")
    p.add_argument("--start-delay", type=float, default=0.0, help="seconds before 'ready.' (import time)")
    p.add_argument("--slow-start-rate", type=float, default=0.0, help="chance a start takes --slow-start-s more")
    p.add_argument("--slow-start-s", type=float, default=30.0)
    p.add_argument("--fail-start", choices=("json", "exit"), default=None,
                   help="fail before ready.: a JSON error line, or a silent exit (stderr only)")
    # Broken variants for `workbench doctor`'s tests: an old Pantograph, a REPL too big for its memory cap.
    p.add_argument("--report-version", default=None, metavar="X.Y.Z",
                   help="--version prints this Pantograph version before the simulator's own name")
    p.add_argument("--omit-sorry-flags", action="store_true",
                   help="goal.tactic replies lack hasSorry/hasUnsafe/messages, as before Pantograph 0.3.1")
    p.add_argument("--reserve-mb", type=float, default=0.0, metavar="MIB",
                   help="when importing more than Init, reserve this much address space before 'ready.' (as "
                        "importing Mathlib maps 6-8 GB); under a smaller RLIMIT_AS the start fails as Lean's does: "
                        "'INTERNAL PANIC: out of memory'")
    p.add_argument("--write-sources", metavar="DIR", default=None,
                   help="write a placeholder .lean file under DIR for every source file the traces name (the files "
                        "`workbench trace --lean simulated` elaborates), then exit")
    p.add_argument("imports", nargs="*", help="modules to import (accepted and ignored)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    lean_options = [u for u in unknown if u.startswith("--") and "=" in u]
    rest = [u for u in unknown if u not in lean_options]
    if args.version:
        print(f"{args.report_version} ({simulator_version(args.lean_version)})" if args.report_version
              else simulator_version(args.lean_version))
        return 0
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.fail_start:
        sys.stderr.write(f"simulated startup failure: unknown module prefix in imports {args.imports}\n")
        sys.stderr.flush()
        if args.fail_start == "json":
            _write({"error": "io", "desc": f"simulated import failure: {' '.join(args.imports) or '(none)'}"})
        return 1
    if not args.traces:
        parser.error("--traces is required")
    theorems = load_theorems(args.traces)
    if args.write_sources:
        n = write_sources(theorems, args.write_sources)
        print(f"{n} simulator source files under {args.write_sources}")
        return 0
    delay = args.start_delay
    if args.slow_start_rate and random.Random(f"{args.seed}:start:{os.getpid()}").random() < args.slow_start_rate:
        delay += args.slow_start_s
    if delay > 0:
        time.sleep(delay)
    # held until the process ends, as an imported environment is; Init alone is small
    reserved = _reserve(args.reserve_mb) if set(args.imports) - {"Init"} else None
    quantiles = LatencyModel.parse(args.latency_quantiles) if args.latency_quantiles else LatencyModel().quantiles
    config = SimConfig(
        seed=args.seed,
        rates=OutcomeRates(args.error_rate, args.divergent_rate, args.complete_rate),
        latency=LatencyModel(quantiles, args.latency_scale),
        namespace_mismatch_rate=args.namespace_mismatch_rate,
        namespace_references=args.namespace_references,
        crash_rate=args.crash_rate,
        hang_rate=args.hang_rate,
        garbage_rate=args.garbage_rate,
        heartbeat_rate=args.heartbeat_rate,
        interrupt_rate=args.interrupt_rate,
        lean_version=args.lean_version,
        gone_lemma_rate=args.gone_lemma_rate,
        omit_sorry_flags=args.omit_sorry_flags,
    )
    sys.stderr.write(f"{SIMULATOR_VERSION}: {len(theorems)} theorems, options {lean_options}\n")
    sys.stderr.flush()
    print("ready.", flush=True)
    try:
        return serve(Simulator(theorems, config))
    finally:
        if reserved is not None:
            reserved.close()


def _reserve(mib: float) -> "mmap.mmap | None":
    """Map ``mib`` MiB of anonymous memory (address space, counted by RLIMIT_AS, untouched so not resident).
    Past the cap Lean's allocator fails and its runtime prints ``INTERNAL PANIC: out of memory``."""
    if mib <= 0:
        return None
    try:
        return mmap.mmap(-1, int(mib * 1024 * 1024))
    except OSError:
        sys.stderr.write("INTERNAL PANIC: out of memory\n")
        sys.stderr.flush()
        os._exit(1)


if __name__ == "__main__":
    sys.exit(main())
