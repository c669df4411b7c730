"""Pure labelling rules and the per-theorem record tree of the negative-mining walk.

Nothing here touches Lean, the policy or the disk: the walk (``walk.py``) feeds typed tactic
outcomes in, and :class:`TheoremTree` hands finished :class:`~workbench.trajectory.TrajectoryRecord`
rows out. The rules (SPEC §4, issue 5):

* a candidate equal to the ground-truth tactic after whitespace normalisation is skipped;
* proof complete ⇒ positive terminal node (alternative proof), remaining depth 0;
* advanced to a state whose canonical text equals Lean's rendering of a ground-truth state the walk
  reached ⇒ positive (``same_state``) with that state's remaining depth. The next and every later
  ground-truth state count, and so do the current and earlier ones: a no-op tactic (``skip``) leaves a
  provable state, labelling it negative would be a false negative. Only Lean's states are compared,
  never the trace's text (an older Lean printed it); a state that equals a ground-truth state the walk
  reaches *later* is relabelled when the records are read (:meth:`TheoremTree.records`);
* advanced to any other state ⇒ negative ``divergent`` node; the candidate's remaining tactics are
  walked from it (a chain): if the chain completes the proof, or reaches a ground-truth state, the
  divergent node and the chain nodes become positives with their true remaining depth, else they
  stay negatives;
* Lean error, parse error, ``hasSorry``/``hasUnsafe``, a heartbeat/recursion limit (``heartbeat``) or
  Pantograph's interrupt (``timeout``) ⇒ no node, counted by kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Sequence

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
from workbench.states import NO_GOALS, canonical_state
from workbench.tactics import normalize_tactic
from workbench.trajectory import TrajectoryRecord

__all__ = [
    "Outcome",
    "RecordKind",
    "NODE_OUTCOMES",
    "normalize_tactic",
    "same_tactic",
    "GroundTruthPath",
    "Verdict",
    "judge",
    "TreeNode",
    "TheoremTree",
    "lean_error_kind",
    "step0_cause",
]


class Outcome(StrEnum):
    """What happened to one tactic attempt (the attempts log's ``outcome`` column)."""

    ALTERNATIVE_PROOF = "alternative_proof"
    SAME_STATE = "same_state"
    DIVERGENT = "divergent"
    LEAN_ERROR = "lean_error"
    PARSE_ERROR = "parse_error"
    REJECTED = "rejected"  # hasSorry / hasUnsafe
    SKIPPED_GROUND_TRUTH = "skipped_ground_truth"  # whitespace-equal to the ground-truth tactic
    DUPLICATE = "duplicate"  # same tactic already tried at this state
    EMPTY = "empty"  # the policy produced no tactic text
    TIMEOUT = "timeout"  # the tactic hung (LeanTimeout or Pantograph's own interrupt)
    HEARTBEAT = "heartbeat"  # Lean gave up: heartbeat or recursion-depth limit (a verdict, never retried)
    INFRA_ERROR = "infra_error"  # the process died / answered garbage twice: candidate skipped
    # ground-truth steps and chain steps
    GROUND_TRUTH = "ground_truth"
    GROUND_TRUTH_FAILED = "ground_truth_failed"
    CHAIN_ADVANCED = "chain_advanced"
    CHAIN_COMPLETE = "chain_complete"
    CHAIN_REACHED_GROUND_TRUTH = "chain_reached_ground_truth"


NODE_OUTCOMES = frozenset({Outcome.ALTERNATIVE_PROOF, Outcome.SAME_STATE, Outcome.DIVERGENT})


class RecordKind(StrEnum):
    GROUND_TRUTH = "ground_truth"
    ALTERNATIVE_PROOF = "alternative_proof"
    SAME_STATE = "same_state"
    DIVERGENT = "divergent"
    CHAIN = "chain"


def same_tactic(a: str, b: str) -> bool:
    return normalize_tactic(a) == normalize_tactic(b)


@dataclass
class GroundTruthPath:
    """The ground-truth states of one theorem, by step index ``0..n`` (``n`` = QED, ``no goals``).

    ``trace`` holds the canonical text of the LeanDojo states (for their number and for reading; the
    traces come from another Lean, so they are never matched); ``lean`` Lean's own rendering of the
    states the walk has reached. A candidate's state matches index ``j`` if it equals Lean's text of it.
    """

    trace: tuple[str, ...]
    lean: dict[int, str] = field(default_factory=dict)

    @classmethod
    def from_states(cls, states_before: Sequence[str]) -> "GroundTruthPath":
        texts = []
        for text in states_before:
            try:
                texts.append(canonical_state(text))
            except ValueError:  # an unparseable trace state can still be matched through Lean's text
                texts.append("\x00unparseable")
        return cls(tuple(texts) + (NO_GOALS,))

    @property
    def num_steps(self) -> int:
        return len(self.trace) - 1

    def remaining(self, index: int) -> int:
        return self.num_steps - index

    def reached(self, index: int, state_text: str) -> None:
        self.lean[index] = state_text

    def match(self, state_text: str) -> int | None:
        """Index of the reached ground-truth state Lean printed as ``state_text`` (the latest if several)."""
        best = None
        for j in range(self.num_steps):  # QED is ProofComplete, never an Advanced state
            if self.lean.get(j) == state_text:
                best = j
        return best


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    remaining_depth: int = -1  # for positives: steps left to QED
    gt_index: int | None = None  # same_state: the ground-truth step whose state was reached

    @property
    def makes_node(self) -> bool:
        return self.outcome in NODE_OUTCOMES

    @property
    def positive(self) -> bool:
        return self.outcome in (Outcome.ALTERNATIVE_PROOF, Outcome.SAME_STATE)


def judge(result: TacticResult, gt: GroundTruthPath) -> Verdict:
    """Label one candidate's first-tactic result."""
    match result:
        case ProofComplete():
            return Verdict(Outcome.ALTERNATIVE_PROOF, 0)
        case Advanced(node=node):
            j = gt.match(node.state_text)
            if j is not None:
                return Verdict(Outcome.SAME_STATE, gt.remaining(j), j)
            return Verdict(Outcome.DIVERGENT)
        case LeanError():
            return Verdict(Outcome.LEAN_ERROR)
        case ParseError():
            return Verdict(Outcome.PARSE_ERROR)
        case Rejected():
            return Verdict(Outcome.REJECTED)
        case LeanLimit():
            return Verdict(Outcome.HEARTBEAT)
        case TacticTimedOut():
            return Verdict(Outcome.TIMEOUT)
    raise TypeError(f"not a tactic result: {result!r}")


def judge_chain_step(result: TacticResult, gt: GroundTruthPath) -> Verdict:
    """Label one step of a candidate's chain (its tactics after the first)."""
    match result:
        case ProofComplete():
            return Verdict(Outcome.CHAIN_COMPLETE, 0)
        case Advanced(node=node):
            j = gt.match(node.state_text)
            if j is not None:
                return Verdict(Outcome.CHAIN_REACHED_GROUND_TRUTH, gt.remaining(j), j)
            return Verdict(Outcome.CHAIN_ADVANCED)
    return judge(result, gt)  # the error kinds


# Lean error texts grouped into a few kinds (notebook 03's view of ground-truth replay failures).
_ERROR_KINDS = (
    ("unknown_identifier", re.compile(r"unknown (identifier|constant)")),
    ("unknown_namespace", re.compile(r"unknown namespace")),
    ("type_mismatch", re.compile(r"type mismatch|application type mismatch")),
    ("failed_to_synthesize", re.compile(r"failed to synthesize")),
    ("unsolved_goals", re.compile(r"unsolved goals")),
    ("tactic_failed", re.compile(r"tactic '[^']+' failed|failed to prove|linarith failed|simp made no progress")),
    ("rewrite_failed", re.compile(r"did not find instance of the pattern|motive is not type correct")),
    ("timeout", re.compile(r"timeout|heartbeats|interrupt")),
    ("parse_error", re.compile(r"unexpected token|expected|unknown tactic")),
)


_UNKNOWN_NAME = re.compile(r"unknown (?:identifier|constant) '([^']+)'")


def step0_cause(error_text: str, binder_names: frozenset[str], *, rescued_by_open: bool) -> str:
    """Why ground-truth step 0 failed before the ``open`` retry: ``binder_context`` (it names a hypothesis
    of the trace's first state that Lean's state lacks), ``namespace`` (the ``open … in`` retry fixed it),
    else ``other``."""
    if rescued_by_open:
        return "namespace"
    if any(m.group(1) in binder_names for m in _UNKNOWN_NAME.finditer(error_text)):
        return "binder_context"
    return "other"


def lean_error_kind(text: str) -> str:
    for kind, pattern in _ERROR_KINDS:
        if pattern.search(text):
            return kind
    return "other" if text.strip() else "none"


# --- the record tree ---------------------------------------------------------------------------


@dataclass
class TreeNode:
    state_id: int
    parent_id: int | None
    tactic: str
    state_pp: str
    num_goals: int
    depth: int
    kind: RecordKind
    positive: bool
    remaining_depth: int  # -1 unknown; ground-truth nodes are resolved in records()
    log_prob: float = 0.0
    score_kind: str = "none"
    open_prefix: str | None = None
    timestamp_ms: int = 0
    gt_index: int | None = None  # ground-truth nodes: their step index

    @property
    def is_complete(self) -> bool:
        return self.num_goals == 0


class TheoremTree:
    """The records of one theorem: a real tree with unique ids and true parents.

    Ids are allocated in insertion order from 0 (the root). Ground-truth nodes get their remaining
    depth at :meth:`records` time: steps to the QED the walk reached, else steps left in the trace.
    """

    def __init__(self, theorem_name: str, gt: GroundTruthPath, *, simulated: bool) -> None:
        self.theorem_name = theorem_name
        self.gt = gt
        self.simulated = simulated
        self.nodes: list[TreeNode] = []
        self.qed_index: int | None = None  # ground-truth step index at which Lean said "no goals"
        self.late_positives = 0  # nodes relabelled because a later ground-truth state equals theirs
        self._chain: list[int] = []

    # -- building ---------------------------------------------------------------------------------

    def _add(self, parent_id: int | None, **kw) -> int:
        depth = 0 if parent_id is None else self.nodes[parent_id].depth + 1
        node = TreeNode(state_id=len(self.nodes), parent_id=parent_id, depth=depth, **kw)
        self.nodes.append(node)
        return node.state_id

    def add_root(self, state_pp: str, num_goals: int, *, timestamp_ms: int = 0) -> int:
        if self.nodes:
            raise ValueError(f"{self.theorem_name}: root added twice")
        self.gt.reached(0, state_pp)
        return self._add(None, tactic="", state_pp=state_pp, num_goals=num_goals, kind=RecordKind.GROUND_TRUTH,
                         positive=True, remaining_depth=-1, timestamp_ms=timestamp_ms, gt_index=0)

    def add_ground_truth(self, parent_id: int, index: int, tactic: str, state_pp: str, num_goals: int, *,
                         open_prefix: str | None = None, timestamp_ms: int = 0) -> int:
        """The ground-truth step ``index`` (1-based: the state after ``index`` tactics) reached by Lean."""
        if num_goals == 0:
            self.qed_index = index
        else:
            self.gt.reached(index, state_pp)
        return self._add(parent_id, tactic=tactic, state_pp=state_pp, num_goals=num_goals,
                         kind=RecordKind.GROUND_TRUTH, positive=True, remaining_depth=-1,
                         open_prefix=open_prefix, timestamp_ms=timestamp_ms, gt_index=index)

    def add_candidate(self, parent_id: int, tactic: str, verdict: Verdict, state_pp: str, num_goals: int, *,
                      log_prob: float, score_kind: str, open_prefix: str | None = None,
                      timestamp_ms: int = 0) -> int:
        kinds = {Outcome.ALTERNATIVE_PROOF: RecordKind.ALTERNATIVE_PROOF, Outcome.SAME_STATE: RecordKind.SAME_STATE,
                 Outcome.DIVERGENT: RecordKind.DIVERGENT}
        if verdict.outcome not in kinds:
            raise ValueError(f"outcome {verdict.outcome} makes no node")
        return self._add(parent_id, tactic=tactic, state_pp=state_pp, num_goals=num_goals,
                         kind=kinds[verdict.outcome], positive=verdict.positive,
                         remaining_depth=verdict.remaining_depth, log_prob=log_prob, score_kind=score_kind,
                         open_prefix=open_prefix, timestamp_ms=timestamp_ms)

    def add_chain_node(self, parent_id: int, tactic: str, verdict: Verdict, state_pp: str, num_goals: int, *,
                       log_prob: float, score_kind: str, open_prefix: str | None = None,
                       timestamp_ms: int = 0) -> int:
        """A node reached by a chain step; negative until :meth:`resolve_chain` says otherwise."""
        return self._add(parent_id, tactic=tactic, state_pp=state_pp, num_goals=num_goals, kind=RecordKind.CHAIN,
                         positive=False, remaining_depth=-1, log_prob=log_prob, score_kind=score_kind,
                         open_prefix=open_prefix, timestamp_ms=timestamp_ms)

    def resolve_chain(self, divergent_id: int, last_id: int, end_remaining: int) -> int:
        """The chain from ``divergent_id`` to ``last_id`` reached a provable state ``end_remaining``
        steps from QED: relabel every node on it positive with its true remaining depth.
        Returns the number of nodes relabelled."""
        count, node_id, remaining = 0, last_id, end_remaining
        while True:
            node = self.nodes[node_id]
            node.positive, node.remaining_depth = True, remaining
            count += 1
            if node_id == divergent_id:
                return count
            if node.parent_id is None:
                raise ValueError(f"{self.theorem_name}: node {last_id} does not descend from {divergent_id}")
            node_id, remaining = node.parent_id, remaining + 1

    # -- reading ----------------------------------------------------------------------------------

    @property
    def negatives(self) -> int:
        return sum(1 for n in self.nodes if not n.positive)

    def gt_remaining(self, index: int) -> int:
        if self.qed_index is not None:
            return self.qed_index - index
        return self.gt.remaining(index)

    def _resolve_late(self) -> None:
        """A negative node whose state equals a ground-truth state the walk reached after it was judged is
        provable: it becomes ``same_state`` (a divergent node) or a positive chain node, and so do the
        negatives on its path back to the positive it came from."""
        for n in self.nodes:
            if n.positive or n.num_goals == 0:
                continue
            j = self.gt.match(n.state_pp)
            if j is None:
                continue
            if n.kind is RecordKind.DIVERGENT:
                n.kind = RecordKind.SAME_STATE
            node, remaining = n, self.gt_remaining(j)
            while node is not None and not node.positive:
                node.positive, node.remaining_depth = True, remaining
                self.late_positives += 1
                node = self.nodes[node.parent_id] if node.parent_id is not None else None
                remaining += 1

    def records(self) -> list[TrajectoryRecord]:
        self._resolve_late()
        source = "simulator" if self.simulated else "pantograph"
        out = []
        for n in self.nodes:
            remaining = self.gt_remaining(n.gt_index) if n.gt_index is not None else n.remaining_depth
            out.append(TrajectoryRecord(
                theorem_name=self.theorem_name,
                state_id=n.state_id,
                state_pp=n.state_pp,
                tactic_applied=n.tactic,
                parent_state_id=n.parent_id,
                label="positive" if n.positive else "negative",
                depth_from_root=n.depth,
                remaining_depth=remaining if n.positive else -1,
                llm_log_prob=n.log_prob,
                is_proof_complete=n.is_complete,
                timestamp_ms=n.timestamp_ms,
                record_kind=str(n.kind),
                state_source=source,
                open_prefix=n.open_prefix,
                num_goals=n.num_goals,
                score_kind=n.score_kind,
                simulated=self.simulated,
            ))
        return out
