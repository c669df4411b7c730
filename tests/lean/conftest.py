"""Fixtures for the Lean backend tests: simulator command lines over the bundled sample traces."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from workbench.lean import LeanConfig, simulator_command


@pytest.fixture
def sim_config(sample_traces_path: Path) -> Callable[..., LeanConfig]:
    """``sim_config(*simulator_flags, **LeanConfig_fields)``: a zero-latency simulator by default."""

    def make(*flags: str, **fields) -> LeanConfig:
        defaults = dict(workers=1, request_timeout_s=10.0, start_timeout_s=20.0, memory_limit_bytes=None)
        defaults.update(fields)
        # Ground truth replays as traced, on the trace's own text: these tests are about processes, slots and
        # replays (the walk against a newer Lean than its traces: tests/mining, tests/lean/test_simversion.py).
        cmd = simulator_command(sample_traces_path, "--latency-scale", "0", "--namespace-mismatch-rate", "0",
                                "--no-namespace-references", "--lean-version", "same", *flags)
        return LeanConfig(command=cmd, **defaults)

    return make
