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


# Every headless notebook execution in the tests has a per-cell limit (as `make demo` and nbval do), so a
# stalled cell fails its test loudly instead of hanging the suite (issue 24, item 1).
NOTEBOOK_CELL_TIMEOUT_S = 600


@pytest.fixture(scope="session")
def execute_notebook():
    """``papermill.execute_notebook`` with ``execution_timeout``, python3 kernel and no progress bar set."""
    papermill = pytest.importorskip("papermill")

    def run(notebook, output, **kwargs):
        kwargs.setdefault("execution_timeout", NOTEBOOK_CELL_TIMEOUT_S)
        kwargs.setdefault("kernel_name", "python3")
        kwargs.setdefault("progress_bar", False)
        return papermill.execute_notebook(str(notebook), str(output), **kwargs)

    return run
