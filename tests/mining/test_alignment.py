"""The walk against simulated Lean on real-sample theorems: intro setup, goal alignment, nested steps.

The simulator keeps goal lists as Lean does (tests/lean/test_simulator.py pins that), so a walk that
replayed the trace in order on the main goal would fail on every focus or nested break.
"""

from __future__ import annotations

import asyncio

import pytest

from workbench.lean import LeanConfig, simulator_command
from workbench.mining.replay_check import NoCandidates, replay_ground_truth
from workbench.mining.walk import WalkParams, walk_theorem
from workbench.states import canonical_state
from workbench.trace_breaks import classify_breaks
from workbench.traces import load_traces


@pytest.fixture(scope="module")
def real(shared_traces_dir):
    path = shared_traces_dir / "random" / "val.json"
    config = LeanConfig(simulator_command(path, "--latency-scale", "0", "--no-namespace-references"),
                        workers=1, memory_limit_bytes=None)
    return load_traces(path, skip_bad=True).theorems, config


def _walk(theorems, config, params=WalkParams(candidates_per_step=0, overlap_generation=False)):
    from workbench.lean import PantographBackend

    async def go():
        async with PantographBackend(config) as pool:
            return [await walk_theorem(t, pool, NoCandidates(), params, simulated=True) for t in theorems]

    return asyncio.run(go())


def _first_of_kind(theorems, kind, n=3):
    return [t for t in theorems if [b.kind for b in classify_breaks(t)].count(kind) and
            {b.kind for b in classify_breaks(t)} == {kind}][:n]


def test_focus_and_nested_theorems_walk_to_qed(real):
    theorems, config = real
    focus, nested = _first_of_kind(theorems, "focus"), _first_of_kind(theorems, "nested")
    assert focus and nested
    results = _walk(focus + nested, config)
    assert [r.reason for r in results] == ["qed"] * len(results), [(r.theorem, r.message) for r in results]
    assert sum(r.counts.align_other_goal for r in results[: len(focus)]) >= 1  # a step sent with goalId
    # Nested steps are never sent: their enclosing tactic ran them (skipped, or the proof was done first).
    assert all(r.counts.gt_steps < len(t.steps) for t, r in zip(nested, results[len(focus):], strict=True))
    for t, r in zip(focus + nested, results, strict=True):
        root = next(x for x in r.records if x.parent_state_id is None)
        assert root.state_pp == canonical_state(t.steps[0].state_before)  # the introduced state, not the ∀-root
        gt = sorted((x for x in r.records if x.record_kind == "ground_truth"), key=lambda x: x.depth_from_root)
        # remaining_depth counts the tactics applied to reach QED (nested steps are inside their enclosing one).
        assert [x.remaining_depth for x in gt] == list(range(len(gt) - 1, -1, -1))


def test_reference_walk_fails_where_the_aligned_walk_does_not(real):
    theorems, config = real
    focus = _first_of_kind(theorems, "focus")
    ref = _walk(focus, config, WalkParams(candidates_per_step=0, overlap_generation=False, introduce_binders=False,
                                          align_goals=False))
    assert all(r.reason != "qed" for r in ref)


def test_real_sample_share_walked_end_to_end(shared_traces_dir):
    """The measurement the README reports: theorems walked to their end without an unaligned step,
    and root records equal to the trace's first state (the exceptions: traces that begin inside a case)."""
    path = shared_traces_dir / "random"
    theorems = load_traces(path, skip_bad=True).theorems
    # Alignment only: namespace failures (tests/lean/test_simnamespace.py) would end theorems first.
    config = LeanConfig(simulator_command(path, "--latency-scale", "0", "--no-namespace-references"), workers=2, memory_limit_bytes=None)
    tally = asyncio.run(replay_ground_truth(theorems, config))
    assert tally.theorems == len(theorems)
    assert tally.without_unaligned >= 0.97 * tally.theorems, tally.as_dict()
    assert tally.start["matched"] >= tally.theorems - 10
    assert tally.step0["binder_context"] == 0
