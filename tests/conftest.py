"""Shared fixtures: the real LeanDojo sample (skipped when absent) and the bundled sample."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_TRACES = REPO.parent / "shared" / "data" / "leandojo_mathlib4"


@pytest.fixture(scope="session")
def shared_traces_dir() -> Path:
    """``../shared/data/leandojo_mathlib4`` (1,855 real theorems); the test is skipped without it."""
    if not (SHARED_TRACES / "random").is_dir():
        pytest.skip("shared LeanDojo sample not present (../shared/data/leandojo_mathlib4)")
    return SHARED_TRACES


@pytest.fixture(scope="session")
def sample_traces_path() -> Path:
    """The hand-written sample that ships inside the package."""
    from workbench.traces import bundled_sample_path

    path = bundled_sample_path()
    if not path.exists():
        pytest.fail(f"bundled sample missing: {path}")
    return path
