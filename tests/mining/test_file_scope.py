"""``mine --source-root``: each theorem starts in its file's scope (issue 21, item 2).

Pantograph v0.3.4 (757db11a) Repl.lean: the REPL holds ONE scope (L21, default empty) that every CoreM
command runs in (``runCoreM`` L45-58: ``currNamespace``, ``openDecls``, options); ``frontend.process`` with
``inheritEnv`` replaces env and scope with the processed text's (L231-235); with ``readHeader`` false the text
is elaborated on top of the REPL's environment (L198-202). ``reset`` does not touch env or scope (L314-318).
So the client re-enters a theorem's scope whenever another theorem on the process changed it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.lean import protocol as P
from workbench.lean.simulator import SimConfig, Simulator, load_theorems, write_sources
from workbench.mining.run import mine
from workbench.mining.settings import MineSettings
from workbench.scope import declaration_line, file_scope

FILE = """import Mathlib

/-! # A file
namespace NotReal
-/

open Finset
open Nat in
theorem before : True := trivial

namespace Foo

variable {α : Type*}
  [Group α]

section Inner
open scoped BigOperators
local notation "𝟙" => (1 : ℕ)
lemma inner_one : True := by
  trivial
end Inner

/-- doc -/
theorem target (a : α) : a = a := by
  rfl

end Foo
"""


def test_file_scope_keeps_open_scopes_and_drops_closed_ones_and_declarations():
    line = declaration_line(FILE, "Foo.target")
    assert FILE.splitlines()[line - 1].startswith("theorem target")
    assert file_scope(FILE, line) == "open Finset\nnamespace Foo\nvariable {α : Type*}\n  [Group α]\n"
    inner = file_scope(FILE, declaration_line(FILE, "Foo.inner_one"))
    assert inner.endswith("section Inner\nopen scoped BigOperators\nlocal notation \"𝟙\" => (1 : ℕ)\n")
    assert "theorem" not in inner and "NotReal" not in inner and "open Nat" not in inner


def test_declaration_line_uses_the_trace_start_only_when_it_declares_the_theorem():
    right = declaration_line(FILE, "Foo.target")
    assert declaration_line(FILE, "Foo.target", hint=right) == right
    assert declaration_line(FILE, "Foo.target", hint=3) == right  # file edited since tracing
    assert declaration_line(FILE, "Foo.missing") is None


def test_simulator_scope_is_the_repls_one_scope(sample_traces_path):
    sim = Simulator(load_theorems(str(sample_traces_path)), SimConfig())
    req = P.frontend_process(file="open Nat\nnamespace Finset\n", read_header=False, inherit_env=True)
    reply = sim.handle(req.cmd, json.loads(req.to_line())["payload"])
    assert all(not u["messages"] for u in reply["units"])
    assert sim.scope_opens == ("Nat", "Finset")
    bad = P.frontend_process(file="open NoSuchNamespace\n", read_header=False, inherit_env=True)
    reply = sim.handle(bad.cmd, json.loads(bad.to_line())["payload"])
    assert reply["units"][0]["messages"][0]["data"] == "unknown namespace 'NoSuchNamespace'"
    empty = P.frontend_process(file="", read_header=False, inherit_env=True)
    assert sim.handle(empty.cmd, json.loads(empty.to_line())["payload"]) == {"units": []}
    assert sim.scope_opens == ()  # an empty text leaves the default scope


def _mine(tmp_path: Path, name: str, **kw) -> dict:
    out = tmp_path / name
    mine(MineSettings(output=str(out), lean="simulated", mode="overwrite", lean_workers=1, concurrency=16,
                      simulator_args=("--latency-scale", "0"), progress=False, **kw))
    return json.loads((out / "summary.json").read_text())


def test_mine_in_file_scope_rescues_namespace_failures_and_counts_fallbacks(tmp_path, sample_traces_path):
    root = tmp_path / "src"
    thms = load_theorems(str(sample_traces_path))
    write_sources(thms, str(root))
    without = _mine(tmp_path, "plain")
    files = sorted({t.file_path for t in thms.values() if t.file_path})
    (root / files[0]).unlink()  # a file moved away: those theorems start as without --source-root
    broken = root / files[1]
    broken.write_text(broken.read_text().replace("-- workbench simulator", "open NoSuchNamespace\n\n-- workbench simulator"))
    scoped = _mine(tmp_path, "scoped", source_root=str(root))

    gt_plain, gt = without["ground_truth_replay"], scoped["ground_truth_replay"]
    assert "by_start_scope" not in gt_plain and gt_plain["failed_before_open_retry"] > 0
    modes = gt["by_start_scope"]
    n_missing = sum(1 for t in thms.values() if t.file_path == files[0])
    n_broken = sum(1 for t in thms.values() if t.file_path == files[1])
    assert modes["no_file"]["theorems"] == n_missing and modes["header_failed"]["theorems"] == n_broken
    assert modes["file_scope"]["theorems"] == len(thms) - n_missing - n_broken
    assert modes["file_scope"]["failed_before_open_retry"] == 0  # the file's namespace and opens resolve every name
    assert gt["failed_before_open_retry"] < gt_plain["failed_before_open_retry"]
    # one process, 16 theorems in flight: each request re-entered its own theorem's scope
    assert scoped["this_run"]["lean_scope_switches"] > len(thms)
    assert scoped["lean_and_traces"]["start_state"] == without["lean_and_traces"]["start_state"]
