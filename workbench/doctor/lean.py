"""`workbench doctor`'s Lean checks: the REPL mining will start, against every assumption the walk makes.

Upstream facts come from lenianiva/Pantograph at v0.3.4 (commit 757db11a; /work/notes/pantograph_facts.md)
and SPEC §1. Protocol probes run in a REPL that imports only ``Init`` (they need nothing else, and it
starts in a second); the start time, memory and the trace walk use the configured command and imports,
through the pool and walk that mining uses (``PantographBackend``, ``walk_theorem``). On the simulator
(its ``--version`` names it) every row is labelled SIMULATED and Lean's verdicts come from its
``__sim_*__`` tactics; checks it cannot answer (it has no elaborator) are skipped, saying so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Sequence

from workbench.doctor.checks import SIMULATED, Check, DetailTable, DoctorOptions, Verdict, advice
from workbench.lean import protocol as P
from workbench.lean.backend import PantographBackend
from workbench.lean.binders import intro_tactic
from workbench.lean.config import LeanConfig
from workbench.lean.errors import LeanBackendError, LeanProtocolError, LeanStartError, LeanTimeout
from workbench.lean.process import LeanProcess, repl_version
from workbench.lean.simulator import SIMULATOR_VERSION
from workbench.mining.records import EndReason, TheoremResult
from workbench.mining.replay_check import NoCandidates, ground_truth_params
from workbench.mining.walk import WalkParams, walk_theorem
from workbench.states import Goal, parse_state, render_state
from workbench.traces import Theorem, input_files

__all__ = ["LeanFindings", "check_lean", "group_memory", "ProcessMemory", "PANTOGRAPH_TOOLCHAINS", "traces_origin"]

log = logging.getLogger(__name__)

SIM_MARK = SIMULATOR_VERSION.split()[0]  # "workbench-lean-simulator"
SYSTEM = "lean"
# Pantograph release -> the Lean toolchain of its tag (lenianiva/Pantograph `lean-toolchain` at v0.3.0..v0.3.4).
# Later releases print the toolchain themselves on their backport branches ("0.3.7/v4.21.0", Version.lean).
PANTOGRAPH_TOOLCHAINS = {(0, 3, 0): "v4.18.0", (0, 3, 1): "v4.18.0", (0, 3, 2): "v4.20.1", (0, 3, 3): "v4.20.1",
                         (0, 3, 4): "v4.21.0"}
GiB = 1024**3

# Probes on Lean core (Init), so they need no Mathlib. `Nat.add_comm : ∀ (n m : Nat), n + m = m + n` is in
# Lean's Init/Data/Nat/Basic.lean; SPEC §1 uses it as copyFrom's example.
CORE_THEOREM = "Nat.add_comm"
CORE_ROOT = "∀ (n m : Nat), n + m = m + n"
CORE_INTRO = "intro n m"
TWO_GOALS = "∀ (p q : Prop), p → q → p ∧ q"  # after `intro p q hp hq; constructor`: goals p, q
SORRY_EXPR = "∀ (n : Nat), n = n"
# Pantograph's own test of the interrupt (Test/Integration.lean v0.3.4 test_tactic_timeout): this goal,
# options.set {"timeout": 10}, then `sleep 1000; simp` -> {"error": "internal", "desc": "interrupt"}; the
# process recovers and `simp` proves the goal.
INTERRUPT_EXPR = "(1 : Nat) + (2 * 3) = 1 + (4 - 3) + (6 - 4) + 3"
INTERRUPT_TACTIC = "(sleep 1000; simp)"
HEARTBEAT_EXPR = "(List.range 3000).foldl (· + ·) 0 = 4498500"  # `decide` unfolds 3000 list cells


@dataclass(frozen=True)
class LeanFindings:
    checks: tuple[Check, ...]
    tables: tuple[DetailTable, ...]
    version: str


@dataclass(frozen=True, slots=True)
class ProcessMemory:
    pid: int
    name: str
    rss_bytes: int
    vm_bytes: int


def group_memory(pgid: int, proc_root: Path = Path("/proc")) -> list[ProcessMemory]:
    """Every process of the process group ``pgid`` (the REPL runs in its own group; under ``lake env repl``
    the REPL is a grandchild), with its resident set and address-space size (``VmRSS``, ``VmSize``)."""
    out = []
    for entry in proc_root.iterdir() if proc_root.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ')'
            if int(stat[stat.rindex(")") + 2:].split()[2]) != pgid:
                continue
            fields = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
        except (OSError, ValueError, IndexError):
            continue  # the process ended meanwhile
        kb = lambda key: int(fields.get(key, "0 kB").split()[0]) * 1024  # noqa: E731
        out.append(ProcessMemory(int(entry.name), fields.get("Name", "?").strip(), kb("VmRSS"), kb("VmSize")))
    return out


def traces_origin(path: Path) -> dict[str, str]:
    """What the traces say about where they come from: LeanDojo's ``metadata.json`` (dataset root; keys
    ``dataset_name``, ``leandojo_version``, ``from_repo``; pantograph_facts.md §12) and the first entry's
    ``url``/``commit``. LeanDojo records no Lean version."""
    out: dict[str, str] = {}
    for root in (path, path.parent, path.parent.parent):
        meta = root / "metadata.json"
        if meta.is_file():
            with contextlib.suppress(OSError, ValueError):
                obj = json.loads(meta.read_text(encoding="utf-8"))
                out |= {k: str(obj[k]) for k in ("dataset_name", "leandojo_version") if k in obj}
                repo = obj.get("from_repo") or {}
                out |= {k: str(repo[k]) for k in ("url", "commit") if k in repo}
            break
    if "commit" not in out:
        with contextlib.suppress(Exception):  # best effort: the origin is information, not a requirement
            first = input_files(path)[0]
            if first.suffix == ".json":
                import ijson

                with first.open("rb") as f:
                    item = next(ijson.items(f, "item"))
                out |= {k: str(item[k]) for k in ("url", "commit") if k in item}
    return out


def _describe_origin(origin: dict[str, str]) -> str:
    repo = origin.get("url", "").rstrip("/").rsplit("/", 1)[-1] or "unknown repository"
    text = f"{repo} @ {origin['commit'][:8]}" if "commit" in origin else "origin not recorded"
    if "leandojo_version" in origin:
        text += f", LeanDojo {origin['leandojo_version']}"
    return text


def toolchain_of(version_text: str) -> str | None:
    """The Lean version a Pantograph build is for: its ``X.Y.Z/vA.B.C`` suffix, else the tag's toolchain."""
    word = version_text.split()[0] if version_text.split() else ""
    if "/" in word:
        return word.split("/", 1)[1]
    parsed = P.parse_version(version_text)
    return PANTOGRAPH_TOOLCHAINS.get(parsed) if parsed else None


# --- version -----------------------------------------------------------------------------------------


def version_checks(text: str | None, error: BaseException | None, origin: dict[str, str], label: str | None
                   ) -> list[Check]:
    """``repl --version`` prints ``Pantograph.version`` and exits before any import (Main.lean v0.3.4 L56-60;
    ``0.3.4``, or ``0.3.7/v4.21.0`` on backport branches, Version.lean); the pool refuses a version below
    ``MIN_VERSION`` (workbench.lean.protocol, SPEC §1: older servers lack ``hasSorry``)."""
    floor = ".".join(map(str, P.MIN_VERSION))
    source = "Pantograph v0.3.4 Main.lean L56-60, Pantograph/Version.lean"
    expected = "a Pantograph release (0.3.4, 0.3.7/v4.21.0)"
    if text is None:
        found, todo = advice(error) if error else ("no answer", "")
        return [Check(SYSTEM, "repl --version", expected, found, Verdict.FAIL, todo, label, source),
                Check(SYSTEM, "version floor", f">= {floor}", "unknown: no version", Verdict.SKIP, "", label)]
    parsed = P.parse_version(text)
    simulator = SIM_MARK in text
    todo = ("" if parsed or simulator else
            "nothing printed: Pantograph prints its version, so this may be another program (e.g. "
            "leanprover-community/repl, which speaks another protocol); the checks below decide" if not text else
            "not a Pantograph version: the pool allows it and records it as is; the checks below decide whether it "
            "answers like Pantograph")
    rows = [Check(SYSTEM, "repl --version", expected, text or "(nothing printed)",
                  Verdict.PASS if parsed or simulator else Verdict.UNKNOWN, todo, label, source)]
    if parsed is None:
        rows.append(Check(SYSTEM, "version floor", f">= {floor}", "unknown (no version number)",
                          Verdict.PASS if simulator else Verdict.UNKNOWN,
                          "" if simulator else "cannot compare: the hasSorry check below is what matters", label,
                          "workbench.lean.protocol.MIN_VERSION"))
    elif parsed < P.MIN_VERSION:
        rows.append(Check(SYSTEM, "version floor", f">= {floor}", ".".join(map(str, parsed)), Verdict.FAIL,
                          f"mining refuses this REPL: build Pantograph {floor} or newer for your project's Lean "
                          f"toolchain (git checkout v{floor}; lake build repl), then point {{pantograph_cmd}} at it",
                          label, "SPEC §1; workbench.lean.protocol.MIN_VERSION"))
    else:
        rows.append(Check(SYSTEM, "version floor", f">= {floor}", ".".join(map(str, parsed)), Verdict.PASS, "", label,
                          "SPEC §1; workbench.lean.protocol.MIN_VERSION"))
    lean = toolchain_of(text)
    traces = _describe_origin(origin)
    found = f"REPL: Lean {lean or 'unknown'}; traces: {traces} (no Lean version recorded)"
    if simulator and lean is None:  # a simulator that names no Lean version replays the traces as traced
        rows.append(Check(SYSTEM, "Lean version vs traces", "the traces' Lean", found + "; the simulator replays "
                          "the traces as traced", Verdict.PASS, "", label))
    else:
        rows.append(Check(
            SYSTEM, "Lean version vs traces", "the Lean the traces were made with (LeanDojo Benchmark 4: early 2024)",
            found, Verdict.UNKNOWN,
            "LeanDojo records no Lean version; every Pantograph the workbench accepts is a newer Lean than early-2024 "
            "traces, which print and elaborate differently (SPEC §1): the walk table below shows how often the "
            "start and step 0 still match",
            label, "Pantograph tags' lean-toolchain; LeanDojo v1.8.2 export_metadata (no toolchain field)",
            {"repl_lean": lean, "traces": origin}))
    return rows


# --- protocol probes (a REPL with Init only) ----------------------------------------------------------


@contextlib.asynccontextmanager
async def _repl(config: LeanConfig, label: str) -> AsyncIterator[LeanProcess]:
    proc = await LeanProcess.start(config, label=label)
    try:
        yield proc
    finally:
        await proc.close()


def _goals_text(goals: Sequence[Goal]) -> str:
    return render_state(goals).replace("\n", " ⏎ ")


class _Probe:
    """Rows of one REPL's probes; a probe that raises becomes a FAIL row (what it said, what to do)."""

    def __init__(self, label: str | None) -> None:
        self.label = label
        self.rows: list[Check] = []

    def add(self, name: str, expected: str, found: str, ok: bool, todo: str, source: str,
            verdict: Verdict | None = None) -> None:
        self.rows.append(Check(SYSTEM, name, expected, found, verdict or (Verdict.PASS if ok else Verdict.FAIL),
                               "" if ok else todo, self.label, source))

    def failed(self, name: str, expected: str, error: BaseException, source: str) -> None:
        found, todo = advice(error)
        if isinstance(error, LeanProtocolError) and error.kind == "malformed":
            found = f"{error.command or 'reply'}: {error.desc}"
            todo = "the reply lacks what the walk reads (an older Pantograph?): see the version and hasSorry rows"
        self.rows.append(Check(SYSTEM, name, expected, found, Verdict.FAIL, todo, self.label, source))

    def skip(self, name: str, expected: str, why: str) -> None:
        self.rows.append(Check(SYSTEM, name, expected, why, Verdict.SKIP, "", self.label))


async def _automatic_mode(proc: LeanProcess, probe: _Probe) -> None:
    """``options.set {"automaticMode": true}`` answers ``{}`` (Repl.lean v0.3.4 L349-366; the option exists
    from 0.2.19). With it other goals stay in every reply (Goal.lean v0.3.4 Site ``.prefer``/``.unfocus``)."""
    await proc.options_set(automatic_mode=True)
    probe.add("options.set automaticMode", "{}", "{}", True, "", "Pantograph v0.3.4 Repl.lean L349-366")


async def _copy_from(proc: LeanProcess, probe: _Probe, sim_theorem: Theorem | None) -> int | None:
    """``goal.start {"copyFrom": name}`` is ``GoalState.create cInfo.type`` (Repl.lean v0.3.4 L374-377,
    Goal.lean L80-92): one goal, the constant's whole type, no hypotheses. Returns the root's state id."""
    name = sim_theorem.full_name if sim_theorem else CORE_THEOREM
    expected = "one goal, no hypotheses: ⊢ " + (CORE_ROOT if sim_theorem is None else "the whole signature (∀ …)")
    source = "Pantograph v0.3.4 Repl.lean L374-377, Goal.lean L80-92; SPEC §1"
    start = await proc.goal_start(copy_from=name)
    goals = (await proc.goal_print(start.state_id)).goals
    found = f"{name}: {len(goals)} goal(s): {_goals_text(goals)}"
    ok = len(goals) == 1 and not goals[0].hypotheses and (
        goals[0].target.replace("ℕ", "Nat") == CORE_ROOT if sim_theorem is None else goals[0].target.startswith("∀"))
    probe.add(f"copyFrom {'a traced theorem' if sim_theorem else CORE_THEOREM}", expected, found, ok,
              "copyFrom does not give the ∀-root the walk introduces binders from: the walk's start would not "
              "match the traces (read the walk table)", source)
    return start.state_id if ok else None


async def _intro(proc: LeanProcess, probe: _Probe, root: int | None, sim_theorem: Theorem | None) -> None:
    """``intro n m`` names the binders (Lean's ``evalIntro``: one ``mvarId.intro`` per name, whatever the binder
    kind); the walk sends the trace's hypothesis names this way (SPEC §1, mining/walk/start.py)."""
    name, source = "binder introduction", "Lean Elab/Tactic/BuiltinTactic.lean evalIntro; SPEC §1"
    if sim_theorem is not None:
        first = parse_state(sim_theorem.steps[0].state_before)
        tactic, expected_text = intro_tactic(first[0]), render_state(first)
        expected = "the trace's first state"
    else:
        tactic, expected_text = CORE_INTRO, "n m : Nat\n⊢ n + m = m + n"
        expected = f"{CORE_INTRO} -> n m : Nat ⊢ n + m = m + n"
    if root is None or tactic is None:
        probe.skip(name, expected, "no ∀-root to introduce (copyFrom failed)")
        return
    reply = await proc.goal_tactic(root, tactic)
    found = f"{tactic}: {reply.outcome}: {_goals_text(reply.goals) or '; '.join(m.data for m in reply.messages)}"
    reached = render_state(reply.goals)
    ok = reply.outcome is P.TacticOutcome.ADVANCED and (
        reached == expected_text if sim_theorem else reached.replace("ℕ", "Nat") == expected_text)
    probe.add(name, expected, found, ok, "`intro` does not reach the trace's first state: every theorem's start "
              "would be a mismatch", source)


async def _goal_id(proc: LeanProcess, probe: _Probe) -> None:
    """A tactic sent with ``goalId`` acts on that goal and, in automatic mode, the other goals stay
    (Goal.lean v0.3.4 L13-54 ``Site.prefer``; before 0.3.3 the tactic saw only the chosen goal and the others
    were re-appended, v0.3.1 Goal.lean L220-238). The walk sends LeanDojo's focused goal this way."""
    expected = f"{TWO_GOALS}: intro, constructor, then exact hq with goalId 1 -> one goal left: ⊢ p"
    source = "Pantograph v0.3.4 Goal.lean L13-54, Repl.lean L106-120"
    start = await proc.goal_start(expr=TWO_GOALS)
    intro = await proc.goal_tactic(start.state_id, "intro p q hp hq")
    split = await proc.goal_tactic(intro.next_state_id, "constructor") if intro.next_state_id is not None else intro
    if split.outcome is not P.TacticOutcome.ADVANCED or len(split.goals) != 2:
        probe.add("tactic with goalId", expected, f"could not reach two goals: {split.outcome}: "
                  f"{_goals_text(split.goals) or '; '.join(m.data for m in split.messages)}", False,
                  "the REPL does not elaborate core tactics as Lean does", source)
        return
    reply = await proc.goal_tactic(split.next_state_id, "exact hq", goal_id=1)
    found = f"{reply.outcome}: {_goals_text(reply.goals) or '; '.join(m.data for m in reply.messages) or 'no goals'}"
    ok = reply.outcome is P.TacticOutcome.ADVANCED and [g.target for g in reply.goals] == ["p"]
    todo = ("the other goal vanished: automatic mode is off or ignored, so a multi-goal step would look proved"
            if reply.outcome is P.TacticOutcome.COMPLETE else
            "goalId did not address the second goal: steps LeanDojo traced on another goal would fail")
    probe.add("tactic with goalId", expected, found, ok, todo, source)


async def _sorry(proc: LeanProcess, probe: _Probe) -> None:
    """``sorry`` closes the goal with ``hasSorry: true`` (Test/Integration.lean v0.3.4: ``goals: []``,
    ``hasSorry: true``); the keys exist from 0.3.1 (SPEC §1). Read as the walk reads it (protocol.parse_goal_tactic):
    a reply without ``hasSorry`` is a protocol error, never a proof."""
    expected = "hasSorry: true; the walk rejects the step"
    source = "Pantograph v0.3.4 Protocol.lean GoalTacticResult, Test/Integration.lean test_tactic; SPEC §1"
    start = await proc.goal_start(expr=SORRY_EXPR)
    raw = await proc.request(P.goal_tactic(start.state_id, "sorry"))
    keys = ", ".join(sorted(raw))
    try:
        typed = P.parse_goal_tactic(raw)
    except LeanProtocolError as e:
        probe.add("sorry flagged by hasSorry", expected, f"reply keys {keys}: {e.desc}", False,
                  "the REPL predates hasSorry (Pantograph < 0.3.1): a sorry would look like a proof; build a newer "
                  "Pantograph", source)
        return
    ok = raw.get("hasSorry") is True and typed.outcome is P.TacticOutcome.REJECTED
    probe.add("sorry flagged by hasSorry", expected, f"hasSorry: {raw.get('hasSorry')}; read as {typed.outcome}", ok,
              "a sorry is not flagged: it would be labelled a proof", source)


async def _interrupt(proc: LeanProcess, probe: _Probe, simulated: bool) -> None:
    """``options.set {"timeout": ms}`` makes Pantograph interrupt a slow tactic: ``{"error": "internal", "desc":
    "interrupt"}``, and the process recovers (Test/Integration.lean v0.3.4 test_tactic_timeout; Repl.lean L48-50,
    L73-77). The walk reads it as Lean's verdict (``TacticTimedOut``), not a broken process."""
    expected = "TIMED_OUT (interrupt), then the REPL answers again"
    source = "Pantograph v0.3.4 Test/Integration.lean test_tactic_timeout, Repl.lean L48-77"
    start = await proc.goal_start(expr=INTERRUPT_EXPR)
    await proc.options_set(timeout_ms=10)
    reply = await proc.goal_tactic(start.state_id, "__sim_interrupt__" if simulated else INTERRUPT_TACTIC)
    await proc.options_set(timeout_ms=0)
    after = await proc.goal_tactic(start.state_id, "sorry" if simulated else "simp")
    recovered = after.outcome in ((P.TacticOutcome.REJECTED,) if simulated else (P.TacticOutcome.COMPLETE,))
    found = f"{reply.outcome}" + (f" ({reply.limit})" if reply.limit else "") + f"; then {after.outcome}"
    ok = reply.outcome is P.TacticOutcome.TIMED_OUT and recovered
    probe.add("interrupt typed as Lean's verdict", expected, found, ok,
              "the interrupt is not typed as a verdict or the REPL did not recover: tactics that run too long "
              "would restart processes instead of being labelled", source)


async def _heartbeats(proc: LeanProcess, probe: _Probe, simulated: bool, limit: int) -> None:
    """Lean's heartbeat limit escapes Pantograph's error capture (CoreM ``tryCatch`` rethrows runtime
    exceptions) and arrives as ``{"error": "core", "desc": "(deterministic) timeout … maximum number of
    heartbeats …"}`` (Repl.lean v0.3.4 L76; pantograph_facts.md §5, inferred from code, not observed upstream).
    ``--maxHeartbeats=N`` is the REPL's CLI option (SPEC §1)."""
    expected = "LIMIT (heartbeats): {\"error\": \"core\", \"desc\": \"…maximum number of heartbeats…\"}"
    source = "Pantograph v0.3.4 Repl.lean L63-77; Lean CoreM tryCatch; SPEC §1"
    name = "heartbeat limit typed as Lean's verdict"
    try:
        start = await proc.goal_start(expr=HEARTBEAT_EXPR)
    except LeanProtocolError as e:
        if e.kind != "core" or "heartbeats" not in e.desc:
            raise
        probe.add(name, expected, f"goal.start: {e.kind}: {e.desc.splitlines()[0][:160]}", False,
                  f"the limit ({limit}) already stopped elaborating the goal: the option applies, but the tactic's "
                  "verdict was not seen (raise DoctorOptions.heartbeat_limit)", source, Verdict.UNKNOWN)
        return
    reply = await proc.goal_tactic(start.state_id, "__sim_heartbeat__" if simulated else "decide")
    text = "; ".join(m.data.splitlines()[0] for m in reply.messages if m.data)[:200]
    found = f"{reply.outcome}" + (f" ({reply.limit})" if reply.limit else "") + (f": {text}" if text else "")
    if reply.outcome is P.TacticOutcome.LIMIT and reply.limit is P.LimitKind.HEARTBEATS:
        probe.add(name, expected, found, True, "", source)
    elif reply.outcome is P.TacticOutcome.LEAN_ERROR and "heartbeats" in text:
        probe.add(name, expected, found, False,
                  "this Lean reports the limit as an ordinary tactic error: the walk counts it as a failed tactic, "
                  "not as gt.failed_limit; labels are still right", source, Verdict.WARN)
    else:
        probe.add(name, expected, found, False,
                  f"--maxHeartbeats={limit} did not stop `decide`: the CLI option may not reach goal.tactic (Repl.lean "
                  "runCoreM takes options from the REPL's scope), so Lean's default limit applies", source,
                  Verdict.WARN)


async def _start_and_intro(proc: LeanProcess, probe: _Probe, sim_theorem: Theorem | None) -> None:
    await _intro(proc, probe, await _copy_from(proc, probe, sim_theorem), sim_theorem)


async def _probes(config: LeanConfig, simulated: bool, sim_theorem: Theorem | None, opts: DoctorOptions,
                  label: str | None) -> list[Check]:
    probe = _Probe(label)
    # Init alone starts in a second or two: a REPL that is not ready by the probe timeout is not Pantograph.
    base = dataclasses.replace(config, imports=("Init",), workers=1, tactic_timeout_ms=None,
                               request_timeout_s=opts.probe_timeout_s,
                               start_timeout_s=min(config.start_timeout_s, opts.probe_timeout_s))
    try:
        async with _repl(base, "doctor-probe") as proc:
            steps = [("options.set automaticMode", lambda: _automatic_mode(proc, probe)),
                     ("copyFrom and intro", lambda: _start_and_intro(proc, probe, sim_theorem)),
                     ("tactic with goalId", None if simulated else lambda: _goal_id(proc, probe)),
                     ("sorry flagged by hasSorry", lambda: _sorry(proc, probe)),
                     ("interrupt typed as Lean's verdict", lambda: _interrupt(proc, probe, simulated))]
            if simulated:  # the simulator ignores --maxHeartbeats: its __sim_heartbeat__ answers the limit
                steps.append(("heartbeat limit typed as Lean's verdict",
                              lambda: _heartbeats(proc, probe, True, opts.heartbeat_limit)))
            for name, run in steps:
                if run is None:
                    probe.skip(name, "one goal left after exact hq on goal 1",
                               "not checked: the simulator has no elaborator for `constructor`")
                    continue
                if not proc.alive:
                    probe.skip(name, "an answer", "not checked: the REPL died in an earlier probe")
                    continue
                try:
                    await run()
                except LeanBackendError as e:
                    probe.failed(name, "an answer", e, "")
    except LeanBackendError as e:  # it did not start
        probe.failed("REPL with Init only", "prints ready.", e, "Pantograph v0.3.4 Main.lean L68-71")
        return probe.rows
    if not simulated:
        limited = dataclasses.replace(base, options={**dict(config.options), "maxHeartbeats": str(opts.heartbeat_limit)})
        name = "heartbeat limit typed as Lean's verdict"
        try:
            async with _repl(limited, "doctor-heartbeats") as proc:
                await _heartbeats(proc, probe, False, opts.heartbeat_limit)
        except LeanTimeout:
            probe.add(name, "LIMIT (heartbeats)", f"no answer within {opts.probe_timeout_s:g} s", False,
                      f"--maxHeartbeats={opts.heartbeat_limit} did not stop `decide`: mining relies on the tactic "
                      "timeout (Pantograph's interrupt) for such tactics", "SPEC §1", Verdict.WARN)
        except LeanBackendError as e:
            probe.failed(name, "LIMIT (heartbeats)", e, "")
    return probe.rows


# --- start, memory and the walk (the configured command and imports) --------------------------------


def _memory_check(procs: list[ProcessMemory], cap: int | None, start_s: float | None, killed_by_cap: bool,
                  label: str | None) -> Check:
    """RLIMIT_AS caps each process's address space (VmSize, not RSS; setrlimit(2)); LeanProcess sets it at spawn
    from ``LeanConfig.memory_limit_bytes`` (12 GiB by default: Mathlib needs 6-8 GB, SPEC §1)."""
    cap_text = f"{cap / GiB:.1f} GiB" if cap else "no cap"
    expected = f"VmSize within the RLIMIT_AS cap ({cap_text}) with headroom for tactics"
    source = "setrlimit(2) RLIMIT_AS; workbench.lean.config.DEFAULT_MEMORY_LIMIT_BYTES; SPEC §1"
    if not procs:
        return Check(SYSTEM, "memory after ready.", expected, "unknown: /proc unreadable", Verdict.UNKNOWN,
                     "cannot tell whether the cap leaves room", label, source)
    biggest = max(procs, key=lambda p: p.vm_bytes)
    rss = sum(p.rss_bytes for p in procs)
    found = (f"RSS {rss / GiB:.2f} GiB, VmSize {biggest.vm_bytes / GiB:.2f} GiB ({biggest.name}, "
             f"{len(procs)} process(es))")
    details = {"rss_bytes": rss, "vm_bytes": biggest.vm_bytes, "cap_bytes": cap, "start_s": start_s,
               "processes": [dataclasses.asdict(p) for p in procs]}
    raise_cap = ("raise the cap (LeanConfig.memory_limit_bytes; workbench.lean.config.DEFAULT_MEMORY_LIMIT_BYTES) "
                 "or import fewer modules")
    if killed_by_cap:
        return Check(SYSTEM, "memory after ready.", expected, found + f": it needs more than the {cap_text} cap",
                     Verdict.FAIL, "the cap kills the REPL before ready.: " + raise_cap, label, source, details)
    if cap and biggest.vm_bytes > 0.8 * cap:
        return Check(SYSTEM, "memory after ready.", expected, found + f": {100 * biggest.vm_bytes / cap:.0f} % of the cap",
                     Verdict.WARN, "less than 20 % headroom: a tactic that allocates more dies (the process restarts); "
                     + raise_cap, label, source, details)
    return Check(SYSTEM, "memory after ready.", expected, found + (f", {cap_text} cap" if cap else ", no cap set"),
                 Verdict.PASS, "", label, source, details)


def _start_check(start_s: float | None, config: LeanConfig, error: BaseException | None, label: str | None,
                 killed_by_cap: bool = False) -> Check:
    expected = f"ready. within the start timeout ({config.start_timeout_s:g} s; Mathlib imports take 15-120 s)"
    source = "Pantograph v0.3.4 Main.lean L68-71 (ready. after imports); SPEC §1"
    imports = " ".join(config.imports) or "(none)"
    if start_s is None or killed_by_cap:
        found, todo = advice(error) if error else ("did not start", "")
        if killed_by_cap:
            todo = "the memory cap kills it before ready.: see the memory row"
        return Check(SYSTEM, f"start with imports {imports}", expected, found, Verdict.FAIL, todo, label, source)
    slow = start_s > 0.5 * config.start_timeout_s
    return Check(SYSTEM, f"start with imports {imports}", expected, f"ready. after {start_s:.1f} s",
                 Verdict.WARN if slow else Verdict.PASS,
                 "over half the start timeout: a restart under load may time out" if slow else "", label, source,
                 {"start_s": round(start_s, 3)})


async def _measure(config: LeanConfig) -> tuple[float, list[ProcessMemory]]:
    t0 = time.monotonic()
    async with _repl(config, "doctor-memory") as proc:
        return time.monotonic() - t0, group_memory(proc.pid)


WALK_COLUMNS = ("theorem", "start", "binders from", "dropped variables", "intro", "step 0 match", "step 0",
                "ended", "message")


def _walk_rows(results: Sequence[TheoremResult]) -> tuple[tuple[str, ...], ...]:
    """The drift table of mining's own start (issue 19): how each theorem started, whose binders the intro
    used, the trace hypotheses Lean's type lacks, how well step 0's goal matched, how the walk ended."""
    rows = []
    for r in results:
        dropped = r.start.get("dropped") or ()
        rows.append((r.theorem, r.start.get("problem") or "matched", str(r.start.get("binders") or "-"),
                     f"{len(dropped)}" + (f" ({', '.join(dropped[:4])})" if dropped else ""),
                     str(r.start.get("intro") or "-"), r.align[0] if r.align else "-",
                     str(r.step0 or "not reached"), str(r.reason), r.message.replace("\n", " ")[:120]))
    return tuple(rows)


def _walk_check(results: Sequence[TheoremResult], label: str | None) -> Check:
    """The walk reaches the trace's first state with copyFrom + intro and applies step 0 (mining/walk/start.py,
    ground_truth.py); on a newer Lean than the traces some starts mismatch (SPEC §1, 'Traces and server are
    different Lean versions')."""
    expected = "each theorem starts at its traced first state and applies step 0"
    source = "SPEC §1 (start state vs LeanDojo's first state; different Lean versions)"
    n = len(results)
    walked = sum(r.reason in (EndReason.QED, EndReason.TRACE_EXHAUSTED) for r in results)
    rescued = sum(r.counts.gt_rescued_by_open for r in results)
    starts = _tally(r.start.get("problem") or "matched" for r in results)
    ends = _tally(str(r.reason) for r in results)
    found = (f"{walked}/{n} applied step 0" + (f" ({rescued} after the `open … in` retry)" if rescued else "")
             + f"; starts: {starts}; ended: {ends}")
    details = {"theorems": n, "step0_applied": walked, "rescued_by_open": rescued}
    if n and walked == n:
        return Check(SYSTEM, "traces walked one step", expected, found, Verdict.PASS, "", label, source, details)
    messages = " ".join(r.message for r in results)
    if "Symbol not found" in messages or "unknown constant" in messages:
        todo = ("the REPL's environment lacks traced theorems: run it from the project the traces were made from, "
                "import Mathlib ({imports}), or re-trace with your Mathlib")
    elif any(r.start.get("problem") for r in results):
        todo = ("the REPL prints the traces' first states differently (a newer Lean, SPEC §1): read the walk table; "
                "mining aligns goals, but expect fewer ground-truth steps replayed")
    else:
        todo = "ground truth fails at step 0: read the messages in the walk table"
    verdict = Verdict.FAIL if walked == 0 else Verdict.WARN
    return Check(SYSTEM, "traces walked one step", expected, found, verdict, todo, label, source, details)


def _tally(values) -> str:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


async def _start_memory_walk(config: LeanConfig, theorems: Sequence[Theorem], params: WalkParams, simulated: bool,
                             refused: bool, label: str | None) -> tuple[list[Check], list[DetailTable]]:
    cfg = dataclasses.replace(config, workers=1)
    walk_expected = "each theorem starts at its traced first state and applies step 0"
    if refused:  # the pool would refuse this version: measure the bare REPL, no walk
        error: BaseException | None = None
        start_s, procs, killed = None, [], False
        try:
            start_s, procs = await _measure(cfg)
        except LeanStartError as e:
            error = e
            start_s, procs, killed = await _diagnose(cfg, e)
        return [_start_check(start_s, cfg, error, label, killed),
                _memory_check(procs, cfg.memory_limit_bytes, start_s, killed, label),
                Check(SYSTEM, "traces walked one step", walk_expected, "not walked: mining refuses this version",
                      Verdict.SKIP, "", label)], []
    t0 = time.monotonic()
    lean = PantographBackend(cfg)
    try:
        await lean.__aenter__()
    except LeanStartError as e:
        start_s, procs, killed = await _diagnose(cfg, e)
        return [_start_check(None, cfg, e, label, killed),
                _memory_check(procs, cfg.memory_limit_bytes, start_s, killed, label),
                Check(SYSTEM, "traces walked one step", walk_expected, "not walked: the REPL did not start",
                      Verdict.SKIP, "", label)], []
    try:
        start_s = time.monotonic() - t0
        pid = next((p.pid for p in lean.stats().processes if p.pid is not None), None)
        procs = group_memory(pid) if pid is not None else []
        results = [await walk_theorem(dataclasses.replace(t, steps=t.steps[:1]), lean, NoCandidates(), params,
                                      simulated=simulated) for t in theorems]
    finally:
        await lean.__aexit__(None, None, None)
    table = DetailTable(SYSTEM, "traces walked one step: start and alignment", WALK_COLUMNS, _walk_rows(results),
                        label)
    return [_start_check(start_s, cfg, None, label), _memory_check(procs, cfg.memory_limit_bytes, start_s, False, label),
            _walk_check(results, label)], [table]


async def _diagnose(cfg: LeanConfig, error: LeanStartError) -> tuple[float | None, list[ProcessMemory], bool]:
    """A start that failed under the memory cap: start once without it. If that works, the cap killed it."""
    if not cfg.memory_limit_bytes:
        return None, [], False
    try:
        start_s, procs = await _measure(dataclasses.replace(cfg, memory_limit_bytes=None))
    except LeanStartError:
        return None, [], False  # it fails without the cap too: the start row says why
    killed = max((p.vm_bytes for p in procs), default=0) > cfg.memory_limit_bytes or "out of memory" in str(error)
    return start_s, procs, killed


def _sim_theorem(theorems: Sequence[Theorem]) -> Theorem | None:
    """A traced theorem whose signature has binders (the simulator knows only the traces' constants)."""
    for t in theorems:
        try:
            goals = parse_state(t.steps[0].state_before)
        except ValueError:
            continue
        if goals and goals[0].hypotheses:
            return t
    return None


async def check_lean(config: LeanConfig, theorems: Sequence[Theorem], traces_path: Path, *,
                     params: WalkParams | None = None, opts: DoctorOptions = DoctorOptions()) -> LeanFindings:
    """Every Lean check, in order: version, protocol probes, start/memory, the trace walk."""
    params = ground_truth_params(params)
    origin = traces_origin(traces_path)
    try:
        version: str | None = await repl_version(config, timeout_s=min(config.start_timeout_s, 30.0))
        error = None
    except LeanStartError as e:
        version, error = None, e
    simulated = version is not None and SIM_MARK in version
    label = SIMULATED if simulated else None
    checks = version_checks(version, error, origin, label)
    if version is None:
        return LeanFindings(tuple(checks), (), "")
    log.info("doctor: Lean %s; protocol probes", version)
    checks += await _probes(config, simulated, _sim_theorem(theorems) if simulated else None, opts, label)
    parsed = P.parse_version(version)
    log.info("doctor: Lean start, memory and %d theorems walked one step", len(theorems))
    rows, tables = await _start_memory_walk(config, theorems, params, simulated,
                                            parsed is not None and parsed < P.MIN_VERSION, label)
    return LeanFindings(tuple(checks + rows), tuple(tables), version)
