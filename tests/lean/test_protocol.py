"""Request/response handling from recorded Pantograph JSON lines (SPEC §1)."""

from __future__ import annotations

import json

import pytest

from workbench.lean import protocol as P
from workbench.lean.errors import LeanGarbage, LeanProtocolError
from workbench.states import canonical_state

GOAL_N = (
    '{"name":"_uniq.9","fragment":"tactic","target":{"pp":"n + 0 = n"},'
    '"vars":[{"name":"_uniq.8","userName":"n","isInaccessible":false,"type":{"pp":"Nat"}}]}'
)
ADVANCED = '{"nextStateId":4,"goals":[' + GOAL_N + '],"hasSorry":false,"hasUnsafe":false}'
COMPLETE = '{"nextStateId":5,"goals":[],"hasSorry":false,"hasUnsafe":false}'
SORRY = '{"nextStateId":5,"goals":[],"hasSorry":true,"hasUnsafe":false}'
UNSAFE = '{"nextStateId":6,"goals":[' + GOAL_N + '],"hasSorry":false,"hasUnsafe":true}'
PARSE_ERROR = '{"parseError":"<Pantograph>:1:1: unknown tactic","hasSorry":false,"hasUnsafe":false}'
LEAN_ERROR = (
    '{"messages":[{"fileName":"<Pantograph>","kind":"lean.unknownIdentifier","pos":{"line":0,"column":6},'
    '"endPos":{"line":0,"column":9},"severity":"error","caption":"","data":"unknown identifier \'foo\'"}],'
    '"hasSorry":false,"hasUnsafe":false}'
)
WARNING_ADVANCED = (
    '{"nextStateId":7,"goals":[' + GOAL_N + '],"messages":[{"fileName":"<Pantograph>","pos":{"line":0,"column":0},'
    '"severity":"warning","data":"this tactic is never executed"}],"hasSorry":false,"hasUnsafe":false}'
)


def reply(line: str, cmd: str = "goal.tactic") -> P.GoalTacticReply:
    return P.parse_goal_tactic(P.decode_reply(line.encode() + b"\n", command=cmd))


def test_requests_are_single_compact_lines():
    line = P.goal_tactic(3, "constructor\n· simp\n· rfl", goal_id=1).to_line()
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "cmd": "goal.tactic",
        "payload": {"stateId": 3, "tactic": "constructor\n· simp\n· rfl", "goalId": 1},
    }
    assert json.loads(P.goal_start(copy_from="Nat.add_comm").to_line())["payload"] == {"copyFrom": "Nat.add_comm"}
    assert json.loads(P.goal_start(expr="∀ (n : Nat), n = n").to_line())["payload"] == {"expr": "∀ (n : Nat), n = n"}
    assert json.loads(P.goal_print(2).to_line())["payload"] == {"stateId": 2, "goals": True}
    assert json.loads(P.goal_delete([3, 4]).to_line()) == {"cmd": "goal.delete", "payload": {"stateIds": [3, 4]}}
    assert json.loads(P.options_set(timeout_ms=5000).to_line())["payload"] == {"timeout": 5000}
    assert "goalId" not in json.loads(P.goal_tactic(0, "simp").to_line())["payload"]


def test_bad_requests_are_refused_before_sending():
    with pytest.raises(ValueError):
        P.goal_start()
    with pytest.raises(ValueError):
        P.goal_start(copy_from="a", expr="b")
    with pytest.raises(ValueError):
        P.goal_tactic(0, "   ")  # would be a blank line's worth of nothing


def test_advanced():
    r = reply(ADVANCED)
    assert r.outcome is P.TacticOutcome.ADVANCED and r.next_state_id == 4
    assert r.state_text == canonical_state("n : Nat\n⊢ n + 0 = n")
    assert r.messages == ()


def test_complete_and_sorry_are_different():
    assert reply(COMPLETE).outcome is P.TacticOutcome.COMPLETE
    s = reply(SORRY)
    assert s.outcome is P.TacticOutcome.REJECTED and s.has_sorry and not s.has_unsafe
    u = reply(UNSAFE)
    assert u.outcome is P.TacticOutcome.REJECTED and u.has_unsafe


def test_parse_error():
    r = reply(PARSE_ERROR)
    assert r.outcome is P.TacticOutcome.PARSE_ERROR
    assert r.parse_error == "<Pantograph>:1:1: unknown tactic"


def test_lean_error_surfaces_message_text():
    r = reply(LEAN_ERROR)
    assert r.outcome is P.TacticOutcome.LEAN_ERROR and r.next_state_id is None
    (m,) = r.messages
    assert str(m) == "unknown identifier 'foo'" and m.severity is P.Severity.ERROR and m.pos == (0, 6)


def test_old_pantograph_tactic_errors():
    r = reply('{"tacticErrors":["linarith failed"]}')
    assert r.outcome is P.TacticOutcome.LEAN_ERROR and [m.data for m in r.messages] == ["linarith failed"]


def test_warnings_keep_a_success_a_success():
    r = reply(WARNING_ADVANCED)
    assert r.outcome is P.TacticOutcome.ADVANCED
    assert r.messages[0].severity is P.Severity.WARNING


def test_error_reply_is_a_protocol_error():
    with pytest.raises(LeanProtocolError) as e:
        P.decode_reply(b'{"error":"index","desc":"Invalid state index 9"}\n', command="goal.tactic")
    assert e.value.kind == "index" and e.value.desc == "Invalid state index 9"
    assert not isinstance(e.value, LeanGarbage) and not e.value.is_interrupt
    with pytest.raises(LeanProtocolError) as e:
        P.decode_reply('{"error":"internal","desc":"interrupt"}', command="goal.tactic")
    assert e.value.is_interrupt


@pytest.mark.parametrize("line", [b"PANIC at foo\n", b"[1, 2]\n", b'{"unterminated": \n', b"\xff\xfe\n"])
def test_garbage_lines(line):
    with pytest.raises(LeanGarbage):
        P.decode_reply(line, command="goal.tactic")


def test_bad_utf8_inside_a_string_is_read_with_replacement_characters():
    assert P.decode_reply(b'{"goals": [], "note": "\xff"}\n', command="goal.tactic")["note"] == "\ufffd"


@pytest.mark.parametrize(
    "line",
    [
        '{"nextStateId":4,"goals":{"not":"a list"}}',
        '{"goals":[]}',  # success without nextStateId
        '{"nextStateId":"4","goals":[]}',
        '{"nextStateId":1,"goals":[{"name":"x"}]}',  # a goal without target
        '{"messages":[{"severity":"error"}]}',  # message without data
        '{"messages":[{"data":"x","severity":"fatal"}]}',
    ],
)
def test_malformed_replies(line):
    with pytest.raises(LeanProtocolError) as e:
        reply(line)
    assert e.value.kind == "malformed"


def test_other_replies():
    started = P.decode_reply('{"stateId":0,"root":"_uniq.7"}', command="goal.start")
    assert P.parse_goal_start(started) == P.GoalStartReply(0, "_uniq.7")
    printed = P.parse_goal_print(json.loads('{"goals":[' + GOAL_N + '],"extraMVars":[],"rootHasSorry":false}'))
    assert [g.target for g in printed.goals] == ["n + 0 = n"]
    assert P.parse_stat({"nGoals": 3}).n_goals == 3
    assert P.parse_empty({}) is None
    with pytest.raises(LeanProtocolError):
        P.parse_goal_start({"root": "x"})


def test_startup_lines():
    assert P.parse_startup_line(b"ready.\n").ready
    err = P.parse_startup_line(b'{"error":"io","desc":"unknown module prefix \'Mathlib\'"}\n')
    assert not err.ready and err.error_kind == "io" and "Mathlib" in err.error_desc
    other = P.parse_startup_line(b"warning: something\n")
    assert not other.ready and other.error_kind is None


def test_heartbeat_and_interrupt_errors_are_tactic_verdicts():
    """lenianiva/Pantograph Repl.lean @0528a15 (runCoreM): a Lean `Exception.error` escaping the tactic
    (heartbeats, max recursion) is answered {"error": "core"}; a fired cancel token {"error": "internal",
    "desc": "interrupt"}. Other errors stay protocol errors."""
    from workbench.lean.errors import LeanProtocolError
    from workbench.lean.protocol import LimitKind, TacticOutcome, tactic_verdict

    hb = tactic_verdict(LeanProtocolError("core", "(deterministic) timeout at `whnf`, maximum number of heartbeats (200000) has been reached"))
    assert hb.outcome is TacticOutcome.LIMIT and hb.limit is LimitKind.HEARTBEATS
    rec = tactic_verdict(LeanProtocolError("core", "maximum recursion depth has been reached"))
    assert rec.outcome is TacticOutcome.LIMIT and rec.limit is LimitKind.MAX_RECURSION
    assert tactic_verdict(LeanProtocolError("internal", "interrupt")).outcome is TacticOutcome.TIMED_OUT
    assert tactic_verdict(LeanProtocolError("core", "unknown constant 'foo'")) is None
    assert tactic_verdict(LeanProtocolError("index", "Invalid state index 9")) is None


@pytest.mark.parametrize("reply", [
    {"nextStateId": 3, "goals": [], "hasUnsafe": False},  # no hasSorry: a sorry would read as a proof
    {"nextStateId": 3, "goals": [], "hasSorry": False},  # no hasUnsafe
    {"nextStateId": 3, "hasSorry": False, "hasUnsafe": False},  # success without goals
])
def test_goal_tactic_success_without_required_keys_is_a_protocol_error(reply):
    """From 0.3.1 (Protocol.lean GoalTacticResult) a success carries goals, hasSorry and hasUnsafe."""
    from workbench.lean.errors import LeanProtocolError
    from workbench.lean.protocol import parse_goal_tactic

    with pytest.raises(LeanProtocolError) as e:
        parse_goal_tactic(reply)
    assert e.value.kind == "malformed"


def test_goal_print_without_goals_is_a_protocol_error():
    from workbench.lean.errors import LeanProtocolError
    from workbench.lean.protocol import parse_goal_print

    with pytest.raises(LeanProtocolError):
        parse_goal_print({"extraMVars": [], "rootHasSorry": False})
    assert parse_goal_print({"goals": []}).goals == ()


def test_version_parsing_and_minimum():
    """The floor is 0.3.4: hasSorry from 0.3.1 (Protocol.lean v0.3.1 GoalTacticResult); in 0.3.1-0.3.2 a tactic
    sent with goalId sees only that goal (Goal.lean v0.3.1 L220-238, `GoalState.step` runs with
    `{ goals := [goal] }`); 0.3.4 isolates the REPL's stdout (Repl.lean v0.3.4 L275-277)."""
    from workbench.lean.protocol import check_version, lean_toolchain, parse_version

    assert parse_version("0.3.4") == (0, 3, 4) and parse_version("0.3.7/v4.21.0") == (0, 3, 7)
    assert parse_version("workbench-lean-simulator 0.1.0 (simulated)") is None
    assert check_version("0.3.4") == (0, 3, 4) and check_version("not a version") is None
    for old in ("0.2.18", "0.3.1", "0.3.3", "0.3.2/v4.9.0"):
        with pytest.raises(ValueError, match=old.replace(".", r"\.") + r".*0\.3\.4"):
            check_version(old)
    # Each tag's lean-toolchain (Pantograph v0.3.0-v0.3.4); a backport build names its own.
    assert lean_toolchain("0.3.4") == "v4.21.0" and lean_toolchain("0.3.7/v4.21.0") == "v4.21.0"
    assert lean_toolchain("0.3.2") == "v4.20.1" and lean_toolchain("0.3.9") is None
    assert lean_toolchain("workbench-lean-simulator 0.2.0 (simulated)") is None


def test_case_tags_lose_their_macro_scopes():
    """Pantograph prints a goal's case tag raw (Delate.lean v0.3.4 L522, ``ofName`` without sanitising), so a
    hygienic tag keeps ``._@.…``; LeanDojo erases macro scopes (ExtractData.lean v1.8.2 L123-125)."""
    raw = ('{"name":"_uniq.3","userName":"h._@.Mathlib.Order.Basic._hyg.1234","fragment":"tactic",'
           '"target":{"pp":"a ≤ b"},"vars":[]}')
    goal = P.goal_from_pantograph(json.loads(raw))
    assert goal.case == "h" and str(goal) == "case h\n⊢ a ≤ b"
    assert P.erase_macro_scopes("inl.h._@.Foo._hyg.7") == "inl.h" and P.erase_macro_scopes("succ") == "succ"


def test_goal_start_levels_only_with_expr_and_options_for_the_ast():
    """``levels`` names the universes ``expr`` may mention (Repl.lean v0.3.4 L370-371); ``copyFrom`` keeps the
    constant's own level parameters (L374-377), so it is never sent with it. ``printExprAST`` is an optional
    ``options.set`` key (Protocol.lean v0.3.4 ``OptionsSet``)."""
    assert json.loads(P.goal_start(expr="∀ {α : Sort u}, α → α", levels=("u",)).to_line())["payload"] == {
        "expr": "∀ {α : Sort u}, α → α", "levels": ["u"]}
    assert json.loads(P.goal_start(copy_from="Nat.add_comm").to_line())["payload"] == {"copyFrom": "Nat.add_comm"}
    with pytest.raises(ValueError, match="levels"):
        P.goal_start(copy_from="List.map", levels=("u",))
    assert json.loads(P.options_set(print_expr_ast=True).to_line())["payload"] == {"printExprAST": True}


def test_goal_print_reads_each_targets_sexp():
    """With printExprAST on every Expression carries "sexp" beside "pp" (Delate.lean v0.3.4 L442-455)."""
    goal = ('{"name":"_uniq.2","fragment":"tactic","vars":[],"target":{"pp":"∀ (n : Nat), n + 1 = n.succ",'
            '"sexp":"(:forall n (:c Nat) ((:c Eq) (:c Nat) 0 0))"}}')
    printed = P.parse_goal_print(json.loads('{"goals":[' + goal + '],"extraMVars":[],"rootHasSorry":false}'))
    assert printed.target_sexps == ("(:forall n (:c Nat) ((:c Eq) (:c Nat) 0 0))",)
    assert P.parse_goal_print({"goals": [json.loads(GOAL_N)]}).target_sexps == (None,)
