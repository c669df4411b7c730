"""The README a new user reads (issue 24, items 2 and 7): real Lean as numbered steps, the mining command
that shows progress in the terminal, a recipe to render notebook 03 on one's own run, benchmark tables in
docs/BENCHMARKS.md."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}.*?$(.*?)(?=^## )", README, flags=re.M | re.S)
    assert match, f"README has no section '## {title}'"
    return match.group(1)


def test_using_real_lean_is_a_sequence_of_numbered_steps():
    steps = re.findall(r"^(\d+)\. \*\*", _section("Using real Lean"), flags=re.M)
    assert [int(s) for s in steps] == list(range(1, len(steps) + 1)) and len(steps) >= 5, steps


def test_the_mining_command_shows_progress_and_says_where_the_log_is():
    section = _section("Using real Lean")
    mining = [c for c in re.findall(r"^\s*papermill [^\n]*(?:\\\n[^\n]*)*", section, flags=re.M) if "02_mine" in c]
    assert mining and all("--log-output" in c for c in mining), mining
    assert "progress.log" in section and "RESUMING" in section


def test_a_recipe_renders_notebook_03_on_ones_own_run():
    section = _section("Using real Lean")
    assert re.search(r"papermill [^\n]*notebooks/03_depth_distribution\.ipynb[^`]*-p inputs", section)
    assert "python -m workbench.render" in section


def test_benchmark_tables_live_in_docs_benchmarks():
    benchmarks = (REPO / "docs" / "BENCHMARKS.md").read_text()
    assert "(docs/BENCHMARKS.md)" in README
    table_rows = [line for line in README.splitlines() if line.startswith("|")]
    assert not [row for row in table_rows if "bench/" in row or re.search(r"theorems/h|steps/s", row)], table_rows
    for command in ("python bench/mine.py", "python bench/mine_ray.py", "python bench/policy_knn.py",
                    "python bench/ebm_real.py"):
        assert command in benchmarks, command  # the README may name it beside a one-line result and the link
