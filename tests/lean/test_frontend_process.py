"""``frontend.process`` as Pantograph v0.3.4 speaks it, and the simulator's answer.

Pinned to lenianiva/Pantograph v0.3.4 (757db11a): Protocol.lean L361-377 ``FrontendProcess`` (payload),
L378-385 ``InvokedTactic``, L387-403 ``CompilationUnit``/``FrontendProcessResult``, L404-409 ``FrontendData``;
Repl.lean L189-265 ``frontend_process`` (exactly one of fileName/file L191-197, boundaries are byte offsets
L205, the invocations file L236-239, ``nInvocations`` only with invocations L255, ``newConstants`` only with
the flag L241-244), L282-284 (an IO error is ``{"error": "io"}``); Frontend/Elab.lean L88-89 (goals joined by
one newline); Frontend/Basic.lean L99-112 (a unit is ``[cmdPos, parserState.pos)``). PyPantograph 66b8e47
server.py L324-348 (``tactic_invocations``: the payload below, the file zipped with the reply's units).
"""

from __future__ import annotations

import json

import pytest

from workbench.lean import protocol as P
from workbench.lean.errors import LeanProtocolError
from workbench.lean.simsource import split_commands, source_text
from workbench.lean.simulator import SimConfig, Simulator, load_theorems, write_sources
from workbench.states import parse_state, render_state


def test_request_sends_every_non_option_field_as_pypantograph_does():
    # Lean's derived FromJson reads every non-Option field, defaults or not: all five Bools always go.
    line = P.frontend_process(file_name="A.lean", invocations="/tmp/inv.json").to_line()
    obj = json.loads(line)
    assert obj["cmd"] == "frontend.process"
    assert obj["payload"] == {"fileName": "A.lean", "invocations": "/tmp/inv.json", "readHeader": True,
                              "inheritEnv": False, "sorrys": False, "typeErrorsAsGoals": False,
                              "newConstants": False}
    assert json.loads(P.frontend_process(file="theorem x : True := trivial", read_header=False,
                                         inherit_env=True).to_line())["payload"] == {
        "file": "theorem x : True := trivial", "readHeader": False, "inheritEnv": True, "sorrys": False,
        "typeErrorsAsGoals": False, "newConstants": False}
    with pytest.raises(ValueError):
        P.frontend_process(file_name="a", file="b")


def test_reply_and_invocations_file_parse_and_zip():
    reply = P.parse_frontend_process({"units": [
        {"boundary": [0, 10], "messages": [], "nInvocations": 0, "newConstants": []},
        {"boundary": [10, 42], "messages": [{"severity": "warning", "data": "unused variable", "pos": {"line": 3, "column": 2}}],
         "nInvocations": 1, "newConstants": ["Foo.bar"]}]})
    assert [u.boundary for u in reply.units] == [(0, 10), (10, 42)]
    assert reply.units[1].messages[0].severity is P.Severity.WARNING and reply.units[1].new_constants == ("Foo.bar",)
    data = ('{"units":[{"invocations":[]},{"invocations":[{"goalBefore":"n : Nat\\n⊢ n = n","goalAfter":"",'
            '"tactic":"rfl","usedConstants":["Eq.refl"]}]}]}')
    full = P.parse_frontend_data(data, reply)
    assert full.units[0].invocations == ()
    assert full.units[1].invocations == (P.InvokedTactic("n : Nat\n⊢ n = n", "", "rfl", ("Eq.refl",)),)
    with pytest.raises(LeanProtocolError, match="1 units for a reply of 2"):
        P.parse_frontend_data('{"units":[{"invocations":[]}]}', reply)
    with pytest.raises(LeanProtocolError):
        P.parse_frontend_process({"units": [{"boundary": [1]}]})


def test_invocation_goal_text_round_trips_to_the_canonical_state():
    state = "case inl\na b : ℕ\nh : a = b\n⊢ a = b\n\nx : ℕ\n⊢ x = x"
    text = P.invocation_goals_text(parse_state(state))
    assert text == "case inl\na b : ℕ\nh : a = b\n⊢ a = b\nx : ℕ\n⊢ x = x"  # one "\n" between goals (Elab.lean L88)
    assert P.state_from_invocation(text) == render_state(parse_state(state))
    assert P.state_from_invocation("") == "no goals"
    # a long target's continuation lines are indented: still one goal
    assert P.state_from_invocation("a : ℕ\n⊢ a =\n    a\ncase h\n⊢ True") == "a : ℕ\n⊢ a = a\n\ncase h\n⊢ True"


def test_source_commands_are_byte_units_with_namespaces():
    text = source_text([("Foo.bär", ("simp",), None), ("baz", ("rfl",), None)])
    commands = split_commands(text, read_header=True)
    data = text.encode()
    assert [c.kind for c in commands] == ["namespace", "theorem", "end", "theorem"]
    assert [c.name for c in commands if c.kind == "theorem"] == ["Foo.bär", "baz"]
    assert commands[0].start == data.index(b"namespace")  # the header (imports, trivia after them) is no unit
    assert all(data[c.start:c.end].decode() == c.text for c in commands)  # byte offsets, UTF-8 (ä is 2 bytes)
    assert commands[-1].end == len(data)
    assert [c.kind for c in split_commands(text, read_header=False)][0] == "import"  # no header read: a command


@pytest.fixture(scope="module")
def sim_and_sources(tmp_path_factory, sample_traces_path):
    root = tmp_path_factory.mktemp("src")
    theorems = load_theorems(str(sample_traces_path))
    write_sources(theorems, str(root))
    return Simulator(theorems, SimConfig(lean_version="newer")), theorems, root


def _ask(sim: Simulator, req: P.Request) -> dict:
    return sim.handle(req.cmd, json.loads(req.to_line())["payload"])


def test_simulator_answers_units_and_writes_the_invocations_file(sim_and_sources, tmp_path):
    sim, theorems, root = sim_and_sources
    thm = next(t for t in theorems.values() if t.file_path)
    inv = tmp_path / "inv.json"
    reply = _ask(sim, P.frontend_process(file_name=str(root / thm.file_path), invocations=str(inv), new_constants=True))
    raw = inv.read_text(encoding="utf-8")
    assert "\n" not in raw and set(json.loads(raw)) == {"units"}  # compact, one line (toJson |>.compress)
    parsed = P.parse_frontend_data(raw, P.parse_frontend_process(reply))
    unit = next(u for u in parsed.units if u.new_constants == (thm.name,))
    assert unit.n_invocations == len(unit.invocations) == len(thm.tactics)
    assert all(set(u) <= {"boundary", "messages", "nInvocations", "newConstants"} for u in reply["units"])
    # the states are this simulator's Lean's (newer printing), not the trace's text
    newer = sim.theorem(thm.name)
    assert [i.goal_before for i in unit.invocations] == [P.invocation_goals_text(parse_state(s)) for s in newer.states[:-1]]
    assert unit.invocations[-1].goal_after == ""


def test_simulator_prints_the_newer_lean_not_the_trace(sim_and_sources, tmp_path):
    sim, theorems, root = sim_and_sources
    changed = [t for t in theorems.values() if t.file_path and sim.theorem(t.name).states[0] != render_state(parse_state(t.states[0]))]
    if not changed:
        pytest.skip("no bundled theorem prints differently in the newer Lean")
    thm = changed[0]
    inv = tmp_path / "inv.json"
    _ask(sim, P.frontend_process(file_name=str(root / thm.file_path), invocations=str(inv), new_constants=True))
    firsts = [u["invocations"][0]["goalBefore"] for u in json.loads(inv.read_text())["units"] if u["invocations"]]
    assert P.invocation_goals_text(parse_state(sim.theorem(thm.name).states[0])) in firsts
    assert P.invocation_goals_text(parse_state(thm.states[0])) not in firsts


def test_simulator_errors_as_pantograph(sim_and_sources, tmp_path):
    sim, _, root = sim_and_sources
    assert _ask(sim, P.frontend_process(file_name=str(tmp_path / "none.lean")))["error"] == "io"
    payload = json.loads(P.frontend_process(file_name="x").to_line())["payload"]
    del payload["sorrys"]
    assert sim.handle("frontend.process", payload)["error"] == "command"
    assert sim.handle("frontend.process", {"readHeader": True, "inheritEnv": False, "sorrys": False,
                                           "typeErrorsAsGoals": False, "newConstants": False})["error"] == "arguments"
    # without readHeader the imports are commands Lean rejects; a theorem it does not hold cannot elaborate
    reply = _ask(sim, P.frontend_process(file="import Mathlib\ntheorem unknown_thm : True := by\n  trivial\n",
                                         read_header=False))
    assert [bool(u["messages"]) for u in reply["units"]] == [True, True]
