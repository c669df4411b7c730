"""The doctor's vocabulary (pure): a check's verdict, one row of the table, a detail table, the options.

A check compares what a real system answers with what the workbench assumes of it. The expectation
comes from upstream source, cited in ``source`` (and in the check's docstring); where the doctor cannot
know, the verdict is ``unknown`` and the row says what that implies, never a guessed pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Mapping, Sequence

__all__ = ["SYSTEMS", "SIMULATED", "STAND_IN", "Verdict", "Check", "DetailTable", "DoctorOptions", "advice", "quantile"]

SYSTEMS = ("lean", "sglang", "encoder")
SIMULATED = "SIMULATED"  # the row was measured on the Lean simulator, not Lean
STAND_IN = "STAND-IN"  # the row was measured on a stand-in server, not SGLang / a real encoder


class Verdict(StrEnum):
    PASS = "pass"
    WARN = "warn"  # works, but something will cost the user (latency, headroom, drift): read "what to do"
    UNKNOWN = "unknown"  # the doctor cannot tell; the row says what that implies
    FAIL = "fail"  # mining would be wrong or would stop: fix it first (exit status 3)
    SKIP = "skip"  # not run (not configured, or an earlier check failed)


@dataclass(frozen=True, slots=True)
class Check:
    """One row: what was checked, what the workbench expects, what the system answered, and what to do."""

    system: str  # lean | sglang | encoder
    name: str
    expected: str
    found: str
    verdict: Verdict
    todo: str = ""  # may name settings as {server_url}: spelled as a flag or a notebook parameter when shown
    label: str | None = None  # SIMULATED / STAND-IN when measured on a stand-in
    source: str = ""  # the upstream source the expectation comes from
    details: Mapping[str, Any] = field(default_factory=dict)  # numbers for doctor.json

    def as_dict(self, style: str = "cli") -> dict[str, Any]:
        from workbench.errors import spell_settings

        return {"system": self.system, "check": self.name, "expected": self.expected, "found": self.found,
                "verdict": str(self.verdict), "what_to_do": spell_settings(self.todo, style), "label": self.label,
                "source": self.source, "details": dict(self.details)}


@dataclass(frozen=True, slots=True)
class DetailTable:
    """A table behind one check (the walk's start/alignment per theorem, the concurrency ramp)."""

    system: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    label: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"system": self.system, "title": self.title, "label": self.label,
                "rows": [dict(zip(self.columns, row)) for row in self.rows]}


@dataclass(frozen=True)
class DoctorOptions:
    """How much the doctor asks of each system: small, so a check-up takes minutes (Mathlib import aside)."""

    theorems: int = 5  # trace theorems walked one step
    probe_timeout_s: float = 60.0  # one protocol probe (a REPL without Mathlib)
    heartbeat_limit: int = 100  # --maxHeartbeats of the heartbeat probe's REPL (Lean counts thousands)
    states: int = 4  # trace states prompted
    calls_per_n: int = 4  # /generate calls for each n (latency p50 / p95)
    sample_counts: tuple[int, ...] = (1, 8)  # n of those calls
    ramp_levels: tuple[int, ...] = (1, 2, 4, 8, 16, 32)  # concurrent /generate calls, in order
    ramp_n: int = 8  # samples per ramp call (mining's candidates per step)
    ramp_budget_s: float = 45.0  # the ramp stops before a level that would exceed this
    knee_factor: float = 1.5  # latency "climbs" when p50 exceeds this many times the p50 of one call alone
    knee_min_rise_s: float = 0.1  # ... and by at least this much (smaller rises are the client's own overhead)
    server_wait_s: float = 120.0  # wait this long for SGLang's /health 200
    poll_s: float = 2.0  # between /health checks
    request_timeout_s: float = 120.0  # one /generate or /encode call
    hidden_size: int = 4096  # DeepSeek-Prover models (SPEC §2)
    encode_batch: int = 16  # states in the encoder's timed batch

    def __post_init__(self) -> None:
        if self.theorems < 1 or self.states < 1 or self.calls_per_n < 1 or self.encode_batch < 2:
            raise ValueError("DoctorOptions: theorems, states, calls_per_n must be >= 1 and encode_batch >= 2")
        if not self.ramp_levels or sorted(self.ramp_levels) != list(self.ramp_levels) or self.ramp_levels[0] != 1:
            raise ValueError(f"DoctorOptions.ramp_levels must rise from 1, got {self.ramp_levels}")
        if self.knee_factor <= 1:
            raise ValueError(f"DoctorOptions.knee_factor must be > 1, got {self.knee_factor}")


def quantile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank quantile (p50 of 4 values is the 2nd smallest); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(q * len(ordered) - 1e-9)  # the epsilon: 0.95 * 20 is 19.000000000000004
    return ordered[min(len(ordered), max(1, rank)) - 1]


def advice(error: BaseException) -> tuple[str, str]:
    """(what happened, what to do) for an exception, from ``workbench.errors.describe`` when it knows it; the advice
    keeps its ``{setting}`` references (the report spells them for its reader)."""
    from workbench.errors import describe

    problem = describe(error)
    if problem is None:
        return f"{type(error).__name__}: {error}"[:300], ""
    said = " ".join(problem.said.split())
    return (problem.what + (f" ({said[-200:]})" if said else ""))[:400], problem.todo
