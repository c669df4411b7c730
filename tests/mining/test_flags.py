"""One translation of flags to MineSettings for the CLI and notebook 02 (issue 12, items 2 and 10)."""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

import pytest

from workbench.mining import cli
from workbench.mining.flags import describe_plan, format_plan
from workbench.mining.flags import settings_from_flags
from workbench.mining.run import MineSettings

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "02_mine_negatives.ipynb"


def notebook_parameters() -> dict[str, tuple[object, str]]:
    """name -> (default, its comment) from notebook 02's parameters cell."""
    cell = next(c for c in json.loads(NOTEBOOK.read_text())["cells"] if "parameters" in c["metadata"].get("tags", []))
    source = "".join(cell["source"])
    tree = ast.parse(source)
    lines = source.splitlines()
    return {n.target.id: (ast.literal_eval(n.value), lines[n.lineno - 1].partition("#")[2])
            for n in tree.body if isinstance(n, ast.AnnAssign)}


def notebook_defaults() -> dict:
    return {name: value for name, (value, _) in notebook_parameters().items()}


def cli_settings(argv: list[str], env: dict) -> MineSettings:
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    return cli.settings_from_args(parser.parse_args(argv), env)


def test_notebook_and_cli_give_the_same_settings_for_the_same_inputs():
    nb = notebook_defaults()
    env = {"PANTOGRAPH_REPL": "lake env repl"}
    from_notebook = settings_from_flags(nb | {"output": "out", "progress": False}, env=env)
    # the notebook's visible choices, spelled as CLI flags
    from_cli = cli_settings(["--output", "out", "--lean", nb["lean"], "--simulator-latency-scale",
                             str(nb["simulator_latency_scale"]), "--resume"], env)
    assert from_cli == from_notebook
    assert from_cli.pantograph_cmd == "lake env repl" and not from_cli.simulated


def test_every_notebook_parameter_is_a_flag_and_defaults_agree_unless_the_notebook_says_why():
    """Issue 23: one default set (MineSettings); a notebook default that differs from the CLI's says why."""
    defaults = cli_settings(["--output", "x"], {})
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    cli_flags = {a.dest: a.default for a in parser._actions}
    differing = []
    for name, (value, comment) in notebook_parameters().items():
        if name in ("output", "progress"):
            continue  # required on the CLI / a terminal property there
        field = {"tactic_timeout": "tactic_timeout_s", "theorem_timeout": "theorem_timeout_s",
                 "server_wait": "server_wait_s", "progress_every": "progress_every_s"}.get(name, name)
        if name in ("resume", "overwrite"):
            expected = {"resume": defaults.mode == "resume", "overwrite": defaults.mode == "overwrite"}[name]
        elif name == "simulator_latency_scale":
            expected = 1.0  # the simulator's own default: no --simulator-latency-scale
            assert cli_flags[name] is None
        else:
            expected = getattr(defaults, field)
        if name == "imports":
            value = tuple(value.split(","))
        if value != expected:
            differing.append(name)
            assert "Differs from the CLI" in comment and "because" in comment, (name, comment)
        else:
            assert "Differs from the CLI" not in comment, name
    assert sorted(differing) == ["lean", "resume", "simulator_latency_scale"]


def test_flags_refuse_contradictions_and_bad_values():
    with pytest.raises(ValueError, match="exclusive"):
        settings_from_flags({"resume": True, "overwrite": True, "output": "o"})
    with pytest.raises(ValueError, match="latency"):
        settings_from_flags({"simulator_latency_scale": -1, "output": "o"})


def test_plan_says_every_fallback():
    plan = describe_plan(settings_from_flags({"lean": "auto", "num_theorems": 5000}, env={}, output_root="r"))
    text = format_plan(plan)
    assert text.startswith("WARNING:") and "SIMULATOR" in text and "5000 requested, 32 available" in text
    assert "retrieval" in plan["policy"] and "bundled sample" in plan["traces"]
    assert "simulator plays a newer Lean than its traces" in plan["versions"]
    assert "Lean and the traces differ (simulated)" in text.splitlines()[0]
    same = describe_plan(settings_from_flags({"lean": "simulated", "simulator_lean_version": "same", "output": "o"}))
    assert "traces' own Lean" in same["versions"] and not any("differ" in w for w in same["warnings"])
    real = describe_plan(settings_from_flags({"output": "o", "pantograph_cmd": "repl", "server_url": "http://h:1"}))
    # Issue 19: the traces' Lean is unknown (no metadata.json, no flag) and every accepted Pantograph is v4.21+
    assert real["warnings"] == ["traces are of unknown version, and LeanDojo's traces predate every accepted "
                                "Pantograph: the walk follows Lean's states, the trace's text is a hint",
                                "traces are the bundled 32-theorem sample"]
    assert "Lean version unknown" in real["versions"] and "Pantograph ≥ 0.3.4 (Lean ≥ v4.21.0)" in real["versions"]
    old = describe_plan(settings_from_flags({"output": "o", "pantograph_cmd": "repl", "traces_lean_version": "v4.7.0"}))
    assert old["warnings"][0].startswith("traces are older than every accepted Pantograph")
    new = describe_plan(settings_from_flags({"output": "o", "pantograph_cmd": "repl", "traces_lean_version": "4.21.0"}))
    assert new["warnings"] == ["traces are the bundled 32-theorem sample"] and "Lean v4.21.0 (flag)" in new["versions"]


def test_mining_announces_the_plan_from_its_own_single_read_of_the_traces(tmp_path, monkeypatch):
    """Issue 16: the traces are read once per run; the plan (issue 12) reuses that read's count."""
    import workbench.mining.run as run_module
    import workbench.traces as traces_module
    from workbench.mining.run import mine, offline_demo_settings

    reads = []
    for module in (run_module, traces_module):
        real = module.load_traces
        monkeypatch.setattr(module, "load_traces", lambda *a, _real=real, **k: reads.append(a) or _real(*a, **k))
    plans = []
    mine(offline_demo_settings(tmp_path / "o", num_theorems=50, simulator_args=("--latency-scale", "0")),
         on_plan=plans.append)
    assert len(reads) == 1
    assert len(plans) == 1 and "50 requested, 32 available" in format_plan(plans[0])
