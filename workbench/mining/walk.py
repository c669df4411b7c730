"""The per-theorem walk: ground-truth path in Lean, policy candidates at every state, labelled tree.

One coroutine per theorem (:func:`walk_theorem`). Inside a theorem, Lean calls are sequential (a
:class:`~workbench.lean.TheoremSession` serves one task), but each step's policy call runs while Lean
applies the ground-truth tactic, and many theorems run at once (``run.py`` bounds how many), so the
LLM and the Lean processes stay busy together.

Fixes over the reference implementation (SPEC §4):

* the ground-truth tactic is retried as ``open <prefixes> in <tactic>`` on a *Lean* failure (not
  only on a transport error);
* a per-theorem timeout keeps every record produced so far (the tree lives outside the timed
  coroutine) and marks the theorem ``timed_out``;
* an infrastructure failure (process died, hung, answered garbage) fails only that request; the
  session replays its path on another process, and the walk retries the request once (ground-truth
  steps: ``infra_retries`` times) or skips that candidate. Nothing already recorded is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterator, Protocol, Sequence

from workbench.lean.binders import intro_tactic
from workbench.lean.errors import LeanBackendError, LeanGarbage, LeanProtocolError, LeanTimeout
from workbench.lean.results import (
    Advanced,
    LeanError,
    LeanLimit,
    ParseError,
    ProofComplete,
    Rejected,
    TacticResult,
    TacticTimedOut,
)
from workbench.mining.labels import (
    GroundTruthPath,
    Outcome,
    TheoremTree,
    judge,
    judge_chain_step,
    lean_error_kind,
    normalize_tactic,
    first_state_names,
    same_tactic,
    step0_cause,
)
from workbench.mining.records import Attempt, EndReason, Status, TheoremResult, status_of
from workbench.namespaces import open_prefixes, wrap_open
from workbench.policy import PolicyUnavailable
from workbench.states import parse_state, render_state
from workbench.trace_breaks import goal_texts, is_nested_in
from workbench.traces import Theorem

__all__ = ["WalkParams", "Attempt", "TheoremResult", "Status", "EndReason", "walk_theorem"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WalkParams:
    candidates_per_step: int = 8
    target_negatives: int = 15
    theorem_timeout_s: float = 120.0
    infra_retries: int = 1  # extra tries of a request whose process died / answered garbage
    infra_grace_s: float = 120.0  # most a theorem's budget is extended by time spent waiting on restarts
    policy_retries: int = 1  # extra tries of a failed generation call before skipping the step
    wrap_candidates: bool = True  # send candidates inside the theorem's `open` prefixes
    overlap_generation: bool = True  # generate while Lean applies the ground-truth step (False: the
    #                                  reference's sequential walk, kept for the benchmark's baseline)
    introduce_binders: bool = True  # `intro` the trace's first-state hypotheses before step 0 (False: the
    #                                 reference's walk from copyFrom's ∀-root, kept to measure what it cost)
    align_goals: bool = True  # apply each step to the Lean goal its state_before shows (False: always the
    #                           main goal, in trace order, as the reference did)


class CandidateLike(Protocol):
    tactic: str
    tactics: tuple[str, ...]
    score: float
    score_kind: str


class PolicyLike(Protocol):
    async def candidates(self, state_pp: str, n: int, *, theorem: str) -> list[Any]: ...


class SessionLike(Protocol):
    async def start(self, *, copy_from: str | None = None, expr: str | None = None) -> Any: ...
    async def tactic(self, node: Any, tactic: str, goal_id: int | None = None) -> TacticResult: ...


class PoolLike(Protocol):
    def theorem(self, name: str) -> Any: ...  # async context manager yielding a SessionLike


def _now_ms() -> int:
    return int(time.time() * 1000)


def _messages(result: TacticResult) -> str:
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


class _Walk:
    """Mutable state of one theorem's walk; survives a timeout or cancellation of the coroutine."""

    def __init__(self, theorem: Theorem, policy: PolicyLike, params: WalkParams, *, simulated: bool) -> None:
        self.theorem = theorem
        self.name = theorem.full_name
        self.policy = policy
        self.params = params
        # Ground-truth positions are the steps the walk expects to apply: nested steps run inside their
        # enclosing tactic, so they are no position of their own (``remaining_depth`` counts applied tactics).
        planned = [s for i, s in enumerate(theorem.steps)
                   if not is_nested_in(s.tactic, (t.tactic for t in theorem.steps[:i]))]
        self.gt = GroundTruthPath.from_states([s.state_before for s in planned])
        self.tree = TheoremTree(self.name, self.gt, simulated=simulated)
        self.prefixes = open_prefixes(self.name)
        self.prefix_text = " ".join(self.prefixes) or None
        self.attempts: list[Attempt] = []
        self.counts: Counter = Counter()
        self.steps_walked = 0
        self.generation_wait_s = 0.0
        self.infra_granted_s = 0.0  # seconds the budget was paused for re-pinning (paused_budget)
        self._pause_depth, self._paused_at, self._paused_when = 0, 0.0, None
        self.lean_wait_s = 0.0
        self.message = ""
        self.start: dict[str, Any] = {}
        self.binder_names = first_state_names(theorem.steps[0].state_before) if theorem.steps else frozenset()
        self.step0: str | None = None

    # -- Lean calls -----------------------------------------------------------------------------------

    async def lean(self, session: SessionLike, node: Any, sent: str, *, retries: int, retry_timeouts: bool,
                   goal_id: int | None = None) -> tuple[TacticResult | Outcome, str, float]:
        """One tactic through the session: the result, or TIMEOUT / INFRA_ERROR after the retries."""
        t0 = time.monotonic()
        last = ""
        for attempt in range(retries + 1):
            try:
                result = await session.tactic(node, sent, goal_id)
                return result, "", self._lean_time(t0)
            except LeanGarbage as e:  # the process was killed; the session re-pins and replays
                last = str(e)
                self.counts["infra.garbage"] += 1
            except LeanProtocolError as e:
                last = str(e)
                self.counts["infra.protocol_error"] += 1
            except LeanTimeout as e:
                last = str(e)
                self.counts["infra.timeout"] += 1
                if not retry_timeouts:
                    return Outcome.TIMEOUT, last, self._lean_time(t0)
            except LeanBackendError as e:  # died / replay failure: the session re-pins to a live process
                last = f"{type(e).__name__}: {e}"
                self.counts["infra.process_error"] += 1
            log.debug("%s: infrastructure error on %r (try %d): %s", self.name, sent[:80], attempt + 1, last[:200])
        return Outcome.INFRA_ERROR, last, self._lean_time(t0)

    def _lean_time(self, t0: float) -> float:
        dt = time.monotonic() - t0
        self.lean_wait_s += dt
        return dt

    async def send(self, session: SessionLike, node: Any, node_id: int, step: int, role: str, tactic: str, *,
                   prefix: str | None = None, goal_id: int | None = None, retry_timeouts: bool = False) -> "_Sent":
        """One tactic to Lean (inside ``open <prefix> in`` when ``prefix``), with the infrastructure retries."""
        sent = wrap_open(tactic, self.prefixes) if prefix else tactic
        result, err, dt = await self.lean(session, node, sent, retries=self.params.infra_retries,
                                          retry_timeouts=retry_timeouts, goal_id=goal_id)
        return _Sent(node_id, step, role, tactic, sent, prefix, result, err, dt)

    def log(self, s: "_Sent", outcome: Outcome | str, new_state_id: int | None = None) -> None:
        """The attempts-log row of a sent tactic, once its outcome (and the record it made) is known."""
        result = None if isinstance(s.result, Outcome) else s.result
        text = s.err or (_messages(result) if result is not None else "")
        kind = None
        if isinstance(result, LeanError):
            kind = lean_error_kind(text)
        elif isinstance(result, ParseError):
            kind = "parse_error"
        elif isinstance(result, (LeanLimit, TacticTimedOut)):
            kind = result.kind
        elif outcome in (Outcome.TIMEOUT, Outcome.INFRA_ERROR):
            kind = str(outcome)
        self.attempts.append(Attempt(self.name, s.node_id, s.step, s.role, s.tactic, s.sent, str(outcome), kind,
                                     text[:4000], round(s.latency, 6), s.prefix, new_state_id, _now_ms()))

    async def introduce(self, session: SessionLike, root: Any) -> Any:
        """Move the signature's binders into the context as the trace's first state has them.

        ``copyFrom`` gives the constant's whole type with an empty context (SPEC §1); LeanDojo's first
        state has the binders as hypotheses. One ``intro`` with the trace's names (``_`` for an
        inaccessible one) is setup, not a proof step: it makes no record. Whatever Lean reached is where
        the walk goes on; ``self.start`` says whether it is the trace's first state and if not, why.
        Returns None when the process failed (infrastructure).
        """
        first_text = self.theorem.steps[0].state_before
        try:
            first = parse_state(first_text)
        except ValueError:
            first = None
        tactic = intro_tactic(first[0]) if first and self.params.introduce_binders else None
        self.start = {"intro": tactic, "problem": None}
        node = root
        if tactic is not None:
            sent = await self.send(session, root, 0, 0, "intro", tactic, retry_timeouts=True)
            result = sent.result
            ok = isinstance(result, Advanced)
            self.log(sent, "intro" if ok else "intro_failed")
            if isinstance(result, Outcome):
                self.message = f"intro: {sent.err}"
                return None
            if ok:
                node = result.node
            else:
                self.start["problem"] = "intro_failed"
                self.message = f"{tactic!r}: {_messages(result)}"
        if first is None:
            self.start["problem"] = "unparseable_first_state"
        elif self.start["problem"] is None and render_state(node.goals) != render_state(first):
            self.start["problem"] = "mismatch"
        self.counts[f"start.{self.start['problem'] or 'matched'}"] += 1
        return node

    # -- goal alignment -------------------------------------------------------------------------------

    def align(self, node: Any, index: int) -> int | None:
        """Index of the goal in Lean's list that step ``index``'s ``state_before`` works on (its first goal),
        None when Lean has no such goal. LeanDojo shows only the focused goal inside ``·``/``case`` blocks,
        so the goal can be anywhere in Lean's list."""
        wanted = goal_texts(self.theorem.steps[index].state_before)
        if not wanted or not self.params.align_goals:
            return 0  # an unparseable trace state: apply to the main goal, as the reference did
        lean = [render_state((g,)) for g in node.goals]
        if wanted[0] in lean:
            return lean.index(wanted[0])
        # A trace that starts inside a `case` block tags a goal Lean (after copyFrom + intro) leaves untagged.
        untagged = [_untagged(t) for t in lean]
        if _untagged(wanted[0]) in untagged:
            self.counts["align.matched_without_case_tag"] += 1
            return untagged.index(_untagged(wanted[0]))
        return None

    def check_after(self, node: Any, index: int) -> None:
        """Goal by goal: every goal the trace's ``state_after`` shows should be open in Lean's state."""
        expected = goal_texts(self.theorem.steps[index].state_after)
        lean = {render_state((g,)) for g in node.goals}
        if any(g not in lean for g in expected):
            self.counts["align.after_mismatch"] += 1

    # -- policy ---------------------------------------------------------------------------------------

    async def candidates(self, state_pp: str) -> list[Any]:
        t0 = time.monotonic()
        try:
            for attempt in range(self.params.policy_retries + 1):
                try:
                    return list(await self.policy.candidates(state_pp, self.params.candidates_per_step, theorem=self.name))
                except (asyncio.CancelledError, KeyboardInterrupt, PolicyUnavailable):
                    raise  # PolicyUnavailable: the server is down (breaker tripped); the run decides, not the walk
                except Exception as e:  # noqa: BLE001 - any generation failure skips the step, logged
                    if getattr(e, "retry_helps", True) is False:
                        # The server refused this request (4xx, e.g. the state is too long for the context):
                        # asking again gets the same answer, and nothing transient was lost.
                        self.counts["policy_rejected"] += 1
                        log.warning("%s: generation refused: %s", self.name, e)
                        return []
                    self.counts["policy_errors"] += 1
                    log.warning("%s: generation failed (try %d): %s", self.name, attempt + 1, e)
            self.counts["steps_without_candidates"] += 1
            return []
        finally:
            self.generation_wait_s += time.monotonic() - t0

    # -- ground truth ---------------------------------------------------------------------------------

    async def advance_ground_truth(self, session: SessionLike, node: Any, node_id: int, index: int, position: int,
                                   goal_id: int | None = None) -> tuple[TacticResult | Outcome, int | None]:
        """Apply ground-truth step ``index`` to goal ``goal_id`` (None: the main goal); on a Lean failure
        retry inside ``open <prefixes> in``. Returns Lean's answer and the record made for the state reached
        (ground-truth position ``position``), None when the step failed."""
        tactic = self.theorem.steps[index].tactic
        self.counts["gt.steps"] += 1
        plain = await self.send(session, node, node_id, index, "ground_truth", tactic, goal_id=goal_id,
                                retry_timeouts=True)
        result = plain.result
        if index == 0:
            self.step0 = "replayed" if plain.ok else "infra" if isinstance(result, Outcome) else None
        if plain.ok:
            return result, self._gt_record(plain, node_id, position, None)
        self.log(plain, Outcome.GROUND_TRUTH_FAILED)
        if isinstance(result, (LeanLimit, TacticTimedOut)):  # Lean's verdict: no open retry, no re-send
            self.counts[f"gt.failed_limit.{result.kind}"] += 1
            if index == 0:
                self.step0 = result.kind
        lean_failure = isinstance(result, (LeanError, ParseError, Rejected))
        if lean_failure:
            self.counts["gt.failed_plain"] += 1
            if index == 0:
                self.counts["gt.step0_failed_plain"] += 1
        detail = plain.err if isinstance(result, Outcome) else _messages(result)
        if isinstance(result, (LeanLimit, TacticTimedOut)):
            detail = f"[{result.kind}] {detail}"
        if lean_failure and self.prefixes:
            wrapped = await self.send(session, node, node_id, index, "ground_truth_open", tactic,
                                      prefix=self.prefix_text, goal_id=goal_id, retry_timeouts=True)
            if index == 0:
                self.step0 = step0_cause(_messages(result), self.binder_names, rescued_by_open=wrapped.ok)
            if wrapped.ok:
                self.counts["gt.rescued_by_open"] += 1
                return wrapped.result, self._gt_record(wrapped, node_id, position, self.prefix_text)
            self.log(wrapped, Outcome.GROUND_TRUTH_FAILED)
            retry = wrapped.result
            detail += f"; with `open {self.prefix_text} in`: " + (wrapped.err if isinstance(retry, Outcome)
                                                                  else _messages(retry))
            result = retry
        if index == 0 and self.step0 is None:
            self.step0 = step0_cause(_messages(result), self.binder_names, rescued_by_open=False)
        self.counts["gt.failed"] += 1
        if index == 0:
            self.counts["gt.step0_failed"] += 1
        self.message = f"step {index}: {tactic!r}: {detail}"
        if isinstance(result, Outcome):
            self.counts["gt.infra_failed"] += 1
        return result, None

    def _gt_record(self, s: "_Sent", node_id: int, position: int, prefix: str | None) -> int:
        child = s.result.node
        self.check_after(child, s.step)
        new_id = self.tree.add_ground_truth(node_id, position, s.tactic, child.state_text, len(child.goals),
                                            open_prefix=prefix, timestamp_ms=_now_ms())
        self.log(s, Outcome.GROUND_TRUTH, new_id)
        return new_id

    # -- candidates -----------------------------------------------------------------------------------

    async def try_candidates(self, session: SessionLike, node: Any, node_id: int, index: int,
                             candidates: Sequence[Any], goal_id: int | None = None) -> None:
        """Each candidate acts on the goal the ground-truth step acts on."""
        gt_tactic = self.theorem.steps[index].tactic
        seen: set[tuple[str, ...]] = set()
        prefix = self.prefix_text if self.params.wrap_candidates else None
        for cand in candidates:
            if self.tree.negatives >= self.params.target_negatives:
                return
            tactic = cand.tactic or ""
            if not tactic.strip():
                self.counts[f"outcome.{Outcome.EMPTY}"] += 1
                continue
            if same_tactic(tactic, gt_tactic):
                self.counts[f"outcome.{Outcome.SKIPPED_GROUND_TRUTH}"] += 1
                continue
            key = tuple(normalize_tactic(t) for t in (cand.tactics or (tactic,)))
            if key in seen:
                self.counts[f"outcome.{Outcome.DUPLICATE}"] += 1
                continue
            seen.add(key)
            sent = await self.send(session, node, node_id, index, "candidate", tactic, prefix=prefix, goal_id=goal_id)
            result = sent.result
            if isinstance(result, Outcome):
                self.counts[f"outcome.{result}"] += 1
                self.log(sent, result)
                continue
            verdict = judge(result, self.gt)
            self.counts[f"outcome.{verdict.outcome}"] += 1
            if not verdict.makes_node:
                self.log(sent, verdict.outcome)
                continue
            child = result.node
            new_id = self.tree.add_candidate(node_id, tactic, verdict, child.state_text, len(child.goals),
                                             log_prob=float(cand.score), score_kind=cand.score_kind,
                                             open_prefix=prefix, timestamp_ms=_now_ms())
            self.log(sent, verdict.outcome, new_id)
            if verdict.outcome is Outcome.ALTERNATIVE_PROOF:
                log.info("%s: alternative proof at step %d: %r", self.name, index, tactic[:120])
            if verdict.outcome is Outcome.DIVERGENT and len(cand.tactics) > 1:
                await self.walk_chain(session, child, new_id, index, cand, prefix)

    async def walk_chain(self, session: SessionLike, node: Any, divergent_id: int, index: int, cand: Any,
                         prefix: str | None) -> None:
        """Walk the candidate's remaining tactics from its divergent node (multi-tactic output)."""
        last_id = divergent_id
        for tactic in cand.tactics[1:]:
            if not tactic.strip():
                continue
            sent = await self.send(session, node, last_id, index, "chain", tactic, prefix=prefix)
            result = sent.result
            if isinstance(result, Outcome):
                self.log(sent, result)
                self.counts["chain.interrupted"] += 1
                return
            verdict = judge_chain_step(result, self.gt)
            if verdict.outcome not in (Outcome.CHAIN_ADVANCED, Outcome.CHAIN_COMPLETE, Outcome.CHAIN_REACHED_GROUND_TRUTH):
                self.log(sent, verdict.outcome)
                self.counts["chain.failed"] += 1
                return
            child = result.node
            new_id = self.tree.add_chain_node(last_id, tactic, verdict, child.state_text, len(child.goals),
                                              log_prob=float(cand.score), score_kind=cand.score_kind,
                                              open_prefix=prefix, timestamp_ms=_now_ms())
            self.log(sent, verdict.outcome, new_id)
            if verdict.outcome is not Outcome.CHAIN_ADVANCED:
                n = self.tree.resolve_chain(divergent_id, new_id, verdict.remaining_depth)
                self.counts["chain.rescued"] += 1
                self.counts["chain.rescued_nodes"] += n
                return
            node, last_id = child, new_id
        self.counts["chain.incomplete"] += 1

    # -- the walk -------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def paused_budget(self, budget: "asyncio.Timeout") -> Iterator[None]:
        """The theorem's clock stops while its session re-pins after a crash (others' restarts and replays are
        not its work), for at most ``infra_grace_s`` in all; past that it times out and --resume retries it."""
        self.counts["infra.rebinds"] += 1  # a timed-out theorem with rebinds is retried by --resume
        loop = asyncio.get_running_loop()
        if self._pause_depth == 0:
            self._paused_at, self._paused_when = loop.time(), budget.when()
            if self._paused_when is not None and not budget.expired():
                budget.reschedule(self._paused_when + self.params.infra_grace_s - self.infra_granted_s)
        self._pause_depth += 1  # several candidates of one theorem may be re-pinning at once
        try:
            yield
        finally:
            self._pause_depth -= 1
            if self._pause_depth == 0 and self._paused_when is not None and not budget.expired():
                grant = min(loop.time() - self._paused_at, self.params.infra_grace_s - self.infra_granted_s)
                self.infra_granted_s += grant
                budget.reschedule(self._paused_when + grant)

    async def run(self, pool: PoolLike, budget: "asyncio.Timeout | None" = None) -> str:
        async with pool.theorem(self.name) as session:
            if budget is not None:
                session.pause_budget = functools.partial(self.paused_budget, budget)
            try:
                root = await session.start(copy_from=self.name)
            except LeanGarbage as e:
                self.message = f"{type(e).__name__}: {e}"
                return "start_infra_error"
            except LeanProtocolError as e:
                self.message = e.desc
                return "start_failed"
            except LeanBackendError as e:
                self.message = f"{type(e).__name__}: {e}"
                return "start_infra_error"
            node = await self.introduce(session, root)
            if node is None:
                return "start_infra_error"
            node_id = self.tree.add_root(node.state_text, len(node.goals), timestamp_ms=_now_ms())
            applied: list[str] = []  # ground-truth tactics Lean ran, in order
            for index, step in enumerate(self.theorem.steps):
                self.steps_walked = index + 1
                goal_id = self.align(node, index)
                if goal_id is None:
                    if is_nested_in(step.tactic, applied):  # its enclosing tactic already ran it
                        self.counts["align.nested_skipped"] += 1
                        continue
                    self.counts["align.unaligned.goal_not_found"] += 1
                    self.message = f"step {index}: its goal is not among Lean's {len(node.goals)} goals"
                    return "unaligned"
                gid = goal_id or None  # the main goal goes without goalId: same session path as before
                if gid is not None:
                    self.counts["align.other_goal"] += 1  # LeanDojo focused a goal that is not Lean's main goal
                if self.params.overlap_generation:
                    # The policy call runs while Lean applies the ground-truth tactic.
                    gt_task = asyncio.ensure_future(
                        self.advance_ground_truth(session, node, node_id, index, len(applied) + 1, gid))
                    try:
                        candidates = await self.candidates(node.state_text)
                        gt_result, next_id = await gt_task
                    finally:
                        if not gt_task.done():
                            gt_task.cancel()
                            await asyncio.gather(gt_task, return_exceptions=True)
                else:
                    candidates = await self.candidates(node.state_text)
                    # Positions count applied tactics (nested steps excluded): remaining depth follows them.
                    gt_result, next_id = await self.advance_ground_truth(session, node, node_id, index,
                                                                         len(applied) + 1, gid)
                next_node = None
                if next_id is not None:
                    applied.append(step.tactic)
                    next_node = gt_result.node
                await self.try_candidates(session, node, node_id, index, candidates, gid)
                if self.tree.negatives >= self.params.target_negatives:
                    return "target_negatives"
                if next_node is None:
                    return "gt_infra_error" if isinstance(gt_result, Outcome) else "gt_failed"
                if isinstance(gt_result, ProofComplete):
                    return "qed"
                node, node_id = next_node, next_id
            return "trace_exhausted"  # the trace ended with goals left (closed by untraced structure)


def _untagged(goal_text: str) -> str:
    return goal_text.split("\n", 1)[1] if goal_text.startswith("case ") else goal_text


@dataclass(slots=True)
class _Sent:
    """One tactic sent to Lean: Lean's answer and what its attempts-log row needs."""

    node_id: int  # the record the tactic was applied to
    step: int
    role: str  # intro | ground_truth | ground_truth_open | candidate | chain
    tactic: str  # as the policy / trace wrote it
    sent: str  # as sent (possibly inside `open … in`)
    prefix: str | None
    result: TacticResult | Outcome
    err: str
    latency: float

    @property
    def ok(self) -> bool:
        return isinstance(self.result, (Advanced, ProofComplete))


async def walk_theorem(theorem: Theorem, pool: PoolLike, policy: PolicyLike, params: WalkParams, *,
                       simulated: bool) -> TheoremResult:
    """Walk one theorem; never raises for Lean trouble or a failed generation call (it ends up in the
    result). ``PolicyUnavailable`` (the policy server is down) propagates: the run stops or waits."""
    walk = _Walk(theorem, policy, params, simulated=simulated)
    t0 = time.monotonic()
    timed_out = False
    if not theorem.steps:
        reason = EndReason.NO_STEPS
    else:
        try:
            async with asyncio.timeout(params.theorem_timeout_s) as budget:
                reason = EndReason(await walk.run(pool, budget))
        except TimeoutError:
            timed_out, reason = True, EndReason.THEOREM_TIMEOUT
            walk.message = f"timed out after {params.theorem_timeout_s:g} s at step {walk.steps_walked}"
            log.info("%s: %s", theorem.full_name, walk.message)
    status = status_of(reason, timed_out=timed_out)
    if reason in (EndReason.GT_FAILED, EndReason.GT_INFRA_ERROR):
        log.info("%s: ground truth failed: %s", theorem.full_name, walk.message[:300])
    return TheoremResult(
        theorem=theorem.full_name,
        status=status,
        reason=reason,
        message=walk.message,
        records=walk.tree.records(),
        attempts=walk.attempts,
        counts=walk.counts,
        num_steps=len(theorem.steps),
        steps_walked=walk.steps_walked,
        duration_s=time.monotonic() - t0,
        generation_wait_s=walk.generation_wait_s,
        lean_wait_s=walk.lean_wait_s,
        start=walk.start,
        step0=walk.step0,
    )
