"""One theorem's walk state and its single path to Lean (every concern of the walk goes through here).

:class:`WalkContext` holds what a walk accumulates (the record tree, the attempts log, the counters,
timings, how it started) and survives a timeout or cancellation of the coroutine that fills it.
:meth:`WalkContext.send` is the walk's one Lean call: a tactic (optionally inside ``open … in``) with
the infrastructure retries; :meth:`WalkContext.log` writes its attempts-log row once its outcome is known.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from workbench.lean.backend import LeanSession
from workbench.lean.errors import LeanBackendError, LeanGarbage, LeanProtocolError, LeanTimeout
from workbench.lean.results import (
    Advanced,
    LeanError,
    LeanLimit,
    Node,
    ParseError,
    ProofComplete,
    Rejected,
    TacticResult,
    TacticTimedOut,
)
from workbench.mining.labels import GroundTruthPath, Outcome, TheoremTree, lean_error_kind
from workbench.mining.records import Attempt, WalkCounts
from workbench.namespaces import open_prefixes, wrap_open
from workbench.states import Hypothesis
from workbench.trace_breaks import is_nested_in
from workbench.traces import Theorem

__all__ = ["WalkParams", "WalkContext", "Sent", "messages", "now_ms"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WalkParams:
    candidates_per_step: int = 8
    target_negatives: int = 15
    theorem_timeout_s: float = 120.0
    infra_retries: int = 1  # extra tries of a request whose process died / answered garbage
    gt_infra_retries: int = 3  # ... of a ground-truth step: the theorem's walk stands on it (a candidate
    #                            that keeps failing costs only itself)
    infra_grace_s: float = 1800.0  # most a theorem's budget is extended by time spent waiting on infrastructure
    #                               (restarts, replays, others' hangs and crashes): a slow pool is not a theorem's
    #                               fault; the cap only ends walks on a pool that is never usable
    policy_retries: int = 1  # extra tries of a failed generation call before skipping the step
    wrap_candidates: bool = True  # send candidates inside the theorem's `open` prefixes
    overlap_generation: bool = True  # generate while Lean applies the ground-truth step (False: the
    #                                  reference's sequential walk, kept for the benchmark's baseline)
    introduce_binders: bool = True  # `intro` the trace's first-state hypotheses before step 0 (False: the
    #                                 reference's walk from copyFrom's ∀-root, kept to measure what it cost)
    source_root: str | None = None  # `mine --source-root`: start each theorem in its file's scope (walk/start.py)
    align_goals: bool = True  # apply each step to the Lean goal its state_before shows (False: always the
    #                           main goal, in trace order, as the reference did)


def now_ms() -> int:
    return int(time.time() * 1000)


def messages(result: TacticResult) -> str:
    """The text Lean answered for a tactic result (errors, flags, or warnings of a success)."""
    match result:
        case LeanError():
            return result.text
        case ParseError():
            return result.message
        case Rejected():
            flags = [f for f, on in (("hasSorry", result.has_sorry), ("hasUnsafe", result.has_unsafe)) if on]
            return " ".join(flags)
        case Advanced() | ProofComplete():
            return "\n".join(m.data for m in result.messages)
        case LeanLimit() | TacticTimedOut():
            return result.text
    return ""


@dataclass(slots=True)
class Sent:
    """One tactic sent to Lean: Lean's answer and what its attempts-log row needs."""

    node_id: int  # the record the tactic was applied to
    step: int
    role: str  # intro | ground_truth | ground_truth_open | candidate | chain
    tactic: str  # as the policy / trace wrote it
    sent: str  # as sent (possibly inside `open … in`)
    prefix: str | None
    result: TacticResult | Outcome  # Outcome.TIMEOUT / INFRA_ERROR when the infrastructure failed
    err: str
    latency: float

    @property
    def ok(self) -> bool:
        return isinstance(self.result, (Advanced, ProofComplete))


@dataclass
class WalkContext:
    """Mutable state of one theorem's walk."""

    theorem: Theorem
    params: WalkParams
    simulated: bool
    attempts: list[Attempt] = field(default_factory=list)
    counts: WalkCounts = field(default_factory=WalkCounts)
    steps_walked: int = 0
    generation_wait_s: float = 0.0
    lean_wait_s: float = 0.0
    message: str = ""
    start: dict[str, Any] = field(default_factory=dict)  # how the walk reached the trace's first state
    step0: str | None = None  # "replayed", or why ground-truth step 0 failed before the open retry
    # The trace's first-state hypotheses Lean's type lacks (an older Lean kept unused section variables):
    # removed from every traced goal before it is compared with Lean's (start.py sets them).
    dropped: tuple[Hypothesis, ...] = ()
    scope: str | None = None  # how the theorem's file scope was entered (start.enter_file_scope); None: not asked
    align: list[str] = field(default_factory=list)  # match quality of each aligned step (align.py)

    def __post_init__(self) -> None:
        self.name = self.theorem.full_name
        # Ground-truth positions are the steps the walk expects to apply: nested steps run inside their
        # enclosing tactic, so they are no position of their own (``remaining_depth`` counts applied tactics).
        steps = self.theorem.steps
        planned = [s for i, s in enumerate(steps) if not is_nested_in(s.tactic, (t.tactic for t in steps[:i]))]
        self.gt = GroundTruthPath.from_states([s.state_before for s in planned])
        self.tree = TheoremTree(self.name, self.gt, simulated=self.simulated)
        self.prefixes = open_prefixes(self.name)
        self.prefix_text = " ".join(self.prefixes) or None

    # -- the one way to Lean --------------------------------------------------------------------------

    async def send(self, session: LeanSession, node: Node, node_id: int, step: int, role: str, tactic: str, *,
                   prefix: str | None = None, goal_id: int | None = None, retry_timeouts: bool = False,
                   retries: int | None = None) -> Sent:
        """One tactic to Lean (inside ``open <prefix> in`` when ``prefix``), with the infrastructure retries
        (``retries``, default ``infra_retries``): a process that died or answered garbage is replaced by the
        session, and the request tried again."""
        sent = wrap_open(tactic, self.prefixes) if prefix else tactic
        t0 = time.monotonic()
        last = ""
        result: TacticResult | Outcome = Outcome.INFRA_ERROR
        for attempt in range((self.params.infra_retries if retries is None else retries) + 1):
            try:
                result, last = await session.tactic(node, sent, goal_id), ""
                break
            except LeanGarbage as e:  # the process was killed; the session re-pins and replays
                last = str(e)
                self.counts.infra_garbage += 1
            except LeanProtocolError as e:
                last = str(e)
                self.counts.infra_protocol_error += 1
            except LeanTimeout as e:
                last = str(e)
                self.counts.infra_timeout += 1
                if not retry_timeouts:
                    result = Outcome.TIMEOUT
                    break
            except LeanBackendError as e:  # died / replay failure: the session re-pins to a live process
                last = f"{type(e).__name__}: {e}"
                self.counts.infra_process_error += 1
            log.debug("%s: infrastructure error on %r (try %d): %s", self.name, sent[:80], attempt + 1, last[:200])
        latency = time.monotonic() - t0
        self.lean_wait_s += latency
        return Sent(node_id, step, role, tactic, sent, prefix, result, last, latency)

    def log(self, s: Sent, outcome: Outcome | str, new_state_id: int | None = None) -> None:
        """The attempts-log row of a sent tactic, once its outcome (and the record it made) is known."""
        result = None if isinstance(s.result, Outcome) else s.result
        text = s.err or (messages(result) if result is not None else "")
        kind = None
        if isinstance(result, LeanError):
            kind = lean_error_kind(text)
        elif isinstance(result, ParseError):
            kind = "parse_error"
        elif isinstance(result, (LeanLimit, TacticTimedOut)):
            kind = result.kind
        elif outcome in (Outcome.TIMEOUT, Outcome.INFRA_ERROR):
            kind = str(outcome)
        self.attempts.append(Attempt(
            theorem=self.name, state_id=s.node_id, step=s.step, role=s.role, tactic=s.tactic, sent=s.sent,
            outcome=str(outcome), error_kind=kind, messages=text[:4000], latency_s=round(s.latency, 6),
            open_prefix=s.prefix, new_state_id=new_state_id, timestamp_ms=now_ms()))
