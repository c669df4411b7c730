"""The run summary, aggregated from per-theorem status lines (pure; works across resumed runs)."""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable, Mapping

from workbench.mining.records import EndReason, Status, WalkCounts

__all__ = ["summarize", "depth_table", "format_summary", "lean_and_traces", "QUALITY_STEPS"]

QUALITY_STEPS = ("0", "1", "2", "3", "4", "5+")  # step buckets of the match-quality table
_QUALITIES = ("exact", "normalised", "fuzzy", "none")


def _scope_row(theorems: int, c: WalkCounts) -> dict[str, Any]:
    return {"theorems": theorems, "steps": c.gt_steps, "failed_before_open_retry": c.gt_failed_plain,
            "rescued_by_open_retry": c.gt_rescued_by_open, "failed": c.gt_failed,
            "step_failure_rate_without_open_retry": _rate(c.gt_failed_plain, c.gt_steps),
            "step_failure_rate": _rate(c.gt_failed, c.gt_steps)}


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def depth_table(lines: Iterable[Mapping[str, Any]]) -> list[dict[str, int]]:
    """Positives / negatives per ``depth_from_root`` over every theorem."""
    table: dict[int, list[int]] = {}
    for line in lines:
        for depth, (pos, neg) in line.get("depth", {}).items():
            row = table.setdefault(int(depth), [0, 0])
            row[0] += pos
            row[1] += neg
    return [{"depth": d, "positives": p, "negatives": n} for d, (p, n) in sorted(table.items())]


def lean_and_traces(lines: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """How Lean's states met the traces' (another Lean printed them): theorems started, with Lean's binders,
    with dropped variables (trace hypotheses Lean's type lacks), the match quality of every aligned step by
    step index (step 0 is the introduced start state against the trace's first state), unaligned ends by reason."""
    lines = list(lines)
    not_started = (EndReason.START_FAILED, EndReason.START_INFRA_ERROR, EndReason.NO_STEPS)
    starts = [line.get("start") or {} for line in lines if line["reason"] not in not_started]
    by_step = {k: dict.fromkeys(_QUALITIES, 0) for k in QUALITY_STEPS}
    for line in lines:
        for i, quality in enumerate(line.get("align") or ()):
            by_step[QUALITY_STEPS[min(i, len(QUALITY_STEPS) - 1)]][quality] += 1
    counts = WalkCounts.total(WalkCounts.from_dict(line.get("counts")) for line in lines)
    return {
        "theorems_started": len(starts),
        "started_with_lean_binders": sum(1 for s in starts if s.get("binders") == "lean"),
        "theorems_with_dropped_variables": sum(1 for s in starts if s.get("dropped")),
        "dropped_variables": sum(len(s.get("dropped") or ()) for s in starts),
        "start_state": dict(sorted(Counter(s.get("problem") or "matched" for s in starts).items())),
        "quality_by_step": {k: v for k, v in by_step.items() if any(v.values())},
        "unaligned_by_reason": dict(sorted(counts.align_unaligned.items())),
    }


def summarize(lines: list[Mapping[str, Any]], *, simulated: bool, provenance: Mapping[str, Any] | None = None,
              this_run: Mapping[str, Any] | None = None) -> dict[str, Any]:
    status = Counter(line["status"] for line in lines)
    skipped = Counter(line["reason"] for line in lines if line["status"] == Status.SKIPPED)
    ended = Counter(line["reason"] for line in lines)
    kinds: Counter = Counter()
    for line in lines:
        kinds.update(line.get("record_kinds", {}))
    counts = WalkCounts.total(WalkCounts.from_dict(line.get("counts")) for line in lines)
    not_started = (EndReason.START_FAILED, EndReason.START_INFRA_ERROR, EndReason.NO_STEPS)
    started = sum(1 for line in lines if line["reason"] not in not_started)
    off_path = ended[EndReason.GT_FAILED] + ended[EndReason.GT_INFRA_ERROR] + ended[EndReason.UNALIGNED]
    positives = {
        "ground_truth": kinds["positive.ground_truth"],
        "alternative_proof": kinds["positive.alternative_proof"],
        "same_state": kinds["positive.same_state"],
        "chain_rescued": kinds["positive.divergent"] + kinds["positive.chain"],
    }
    negatives = {"divergent": kinds["negative.divergent"], "chain": kinds["negative.chain"]}
    outcomes = counts.candidate_outcomes()
    survival = sum(
        1 for line in lines if any(int(d) > 2 and pn[1] > 0 for d, pn in line.get("depth", {}).items()))
    gt = {
        "theorems_started": started,
        "steps_attempted": counts.gt_steps,
        "failed_before_open_retry": counts.gt_failed_plain,
        "rescued_by_open_retry": counts.gt_rescued_by_open,
        "failed": counts.gt_failed,
        "failed_infrastructure": counts.gt_infra_failed,
        "step0_failed_before_open_retry": counts.gt_step0_failed_plain,
        "step0_failed": counts.gt_step0_failed,
        "step0_failure_rate": _rate(counts.gt_step0_failed, started),
        "step0_failure_rate_without_open_retry": _rate(counts.gt_step0_failed_plain, started),
        "step_failure_rate": _rate(counts.gt_failed, counts.gt_steps),
        "step_failure_rate_without_open_retry": _rate(counts.gt_failed_plain, counts.gt_steps),
        "theorems_off_path": off_path,
        "theorems_off_path_rate": _rate(off_path, started),
    }
    # How each walk reached the trace's first state (setup intro) and why step 0 failed, if it did.
    start = Counter((line.get("start") or {}).get("problem") or "matched" for line in lines
                    if (line.get("start") or {}).get("intro", "") != "")
    step0 = Counter(line["step0"] for line in lines if line.get("step0"))
    gt["failed_by_lean_limit"] = counts.failed_by_lean_limit()
    gt["start"] = dict(sorted(start.items()))
    # `mine --source-root`: ground-truth failures by how the theorem started (in its file's scope or not)
    by_scope: dict[str, list[WalkCounts]] = {}
    for line in lines:
        mode = (line.get("start") or {}).get("scope")
        if mode:
            by_scope.setdefault(mode, []).append(WalkCounts.from_dict(line.get("counts")))
    if by_scope:
        gt["by_start_scope"] = {mode: _scope_row(len(cs), WalkCounts.total(cs)) for mode, cs in sorted(by_scope.items())}
    gt["step0_outcome"] = dict(sorted(step0.items()))
    summary: dict[str, Any] = {
        "simulated": simulated,
        "attempted": len(lines),
        "completed": status[Status.COMPLETED],
        "skipped": sum(skipped.values()),
        "skipped_by_reason": dict(sorted(skipped.items())),
        "timed_out": status[Status.TIMED_OUT],
        "ended_by_reason": dict(sorted(ended.items())),
        "records": sum(line.get("records", 0) for line in lines),
        "positives": sum(positives.values()),
        "positives_by_kind": positives,
        "negatives": sum(negatives.values()),
        "negatives_by_kind": negatives,
        "alternative_proofs": kinds["positive.alternative_proof"],
        "rejected": outcomes.get("rejected", 0),
        "candidate_outcomes": outcomes,
        "chains": counts.chains(),
        "ground_truth_replay": gt,
        "goal_alignment": counts.alignment(),
        "lean_and_traces": lean_and_traces(lines),
        "infrastructure": counts.infrastructure(),
        "policy_errors": counts.policy_errors,
        "steps_without_candidates": counts.steps_without_candidates,
        "theorems_incomplete": sum(1 for line in lines if line.get("incomplete")),
        "theorems_with_negatives_deeper_than_2": survival,
        "depth_table": depth_table(lines),
    }
    if this_run is not None:
        summary["this_run"] = dict(this_run)
    if provenance is not None:
        summary["provenance"] = dict(provenance)
        versions = (provenance.get("identity") or {}).get("versions")
        if versions:
            summary["versions"] = versions
    return summary


def format_summary(s: Mapping[str, Any]) -> str:
    """The end-of-run text (as the seed printed it), with the simulated warning first."""
    gt = s["ground_truth_replay"]
    lines = []
    if s.get("simulated"):
        lines.append("*** SIMULATED LEAN: these labels come from the simulator, not from Lean. Do not train on them. ***")
    if s.get("versions"):
        lines.append(f"versions ({s['versions']['meet']}): {s['versions']['note']}")
    lt = s.get("lean_and_traces")
    if lt:
        quality = "; ".join(f"{k}: " + " / ".join(f"{q} {n}" for q, n in v.items() if n)
                            for k, v in lt["quality_by_step"].items())
        lines += [f"start: {lt['theorems_started']} started, {lt['started_with_lean_binders']} with Lean's binders, "
                  f"{lt['theorems_with_dropped_variables']} with dropped variables ({lt['dropped_variables']} in all); "
                  f"start state vs the trace's: {lt['start_state']}",
                  f"match quality by step: {quality or '-'}; unaligned by reason: {lt['unaligned_by_reason'] or 0}"]
    lines += [
        f"theorems: {s['attempted']} attempted, {s['completed']} completed, {s['skipped']} skipped "
        f"{s['skipped_by_reason']}, {s['timed_out']} timed out",
        "positives: {} (ground truth {ground_truth}, alternative {alternative_proof}, same-state {same_state}, "
        "chain-rescued {chain_rescued})".format(s["positives"], **s["positives_by_kind"]),
        f"negatives: {s['negatives']} {s['negatives_by_kind']}; alternative proofs: {s['alternative_proofs']}; "
        f"rejected (sorry/unsafe): {s['rejected']}",
        f"ground-truth replay: step-0 failure rate {gt['step0_failure_rate']} "
        f"(without the open retry {gt['step0_failure_rate_without_open_retry']}), per-step failure rate "
        f"{gt['step_failure_rate']} (without {gt['step_failure_rate_without_open_retry']}); "
        f"{gt['rescued_by_open_retry']} steps rescued by `open ... in`",
        f"ground-truth step 0: {gt['step0_outcome']}",
        *(f"ground truth by start ({mode}): {r['theorems']} theorems, {r['steps']} steps, {r['failed_before_open_retry']} "
          f"failed as written, {r['rescued_by_open_retry']} rescued by `open ... in`, {r['failed']} failed"
          for mode, r in (gt.get("by_start_scope") or {}).items()),
        f"theorems with negatives deeper than 2: {s['theorems_with_negatives_deeper_than_2']}",
    ]
    gen = (s.get("this_run") or {}).get("policy") or {}
    if "completion_tokens" in gen:  # SGLang: what the prompt format costs per candidate
        lines.append(f"generation (this run): {gen['completion_tokens']} tokens in {gen['answered_requests']} calls, "
                     f"{gen['completion_tokens_per_candidate']} per candidate; {gen['truncated']} samples truncated "
                     f"({gen.get('truncated_kept', 0)} kept their complete leading tactics), {gen['aborts']} aborted "
                     f"calls, 4xx {gen['http_4xx']}, {gen.get('failed_steps', 0)} steps failed (theorems left unfinished)")
    lines += [
        "depth | positives | negatives",
    ]
    lines += [f"{r['depth']:>5} | {r['positives']:>9} | {r['negatives']:>9}" for r in s["depth_table"]]
    bad = (s.get("this_run") or {}).get("malformed_trace_entries")
    if bad:
        lines.append(f"skipped {bad['count']} malformed trace entries (--strict stops instead); first: "
                     + " | ".join(bad["first"]))
    return "\n".join(lines)
