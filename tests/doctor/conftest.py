"""Fixtures for `workbench doctor`'s tests: the simulator, the stand-in servers and small check-ups."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from workbench.doctor import DoctorOptions
from workbench.lean import LeanConfig, simulator_command
from workbench.traces import load_traces

# Small and quick: two calls per n, a short ramp; waits in tenths of a second (all loopback).
FAST = DoctorOptions(calls_per_n=2, server_wait_s=5.0, poll_s=0.05, ramp_budget_s=20.0, encode_batch=6)


@pytest.fixture
def fast() -> DoctorOptions:
    return FAST


@pytest.fixture(scope="session")
def theorems(sample_traces_path: Path):
    return load_traces(sample_traces_path, num_theorems=5, seed=0).theorems


@pytest.fixture(scope="session")
def states(theorems) -> list[str]:
    out = list(dict.fromkeys(s.state_before for t in theorems for s in t.steps))
    assert len(out) >= 6
    return out


@pytest.fixture
def sim_lean(sample_traces_path: Path) -> Callable[..., LeanConfig]:
    """``sim_lean(*simulator_flags, **LeanConfig_fields)``: the simulator as mining starts it, instant."""

    def make(*flags: str, traces: Path | None = None, **fields) -> LeanConfig:
        defaults = dict(imports=("Init", "Mathlib"), memory_limit_bytes=None, start_timeout_s=30.0)
        return LeanConfig(simulator_command(traces or sample_traces_path, "--latency-scale", "0", *flags),
                          **(defaults | fields))

    return make
