"""Pantograph's wire protocol as typed records (SPEC §1).

This module is the only place that knows Pantograph's JSON spelling (camelCase keys); everything above
it sees frozen dataclasses. It touches no process: requests serialise to one line of bytes, replies
parse from one line. Rules worth knowing:

* a request is one line of compact JSON ending in ``\\n``, never an empty line (that ends the REPL);
* every reply is one JSON object; ``{"error": kind, "desc": text}`` is a protocol error;
* ``goal.tactic`` failed iff the reply has no ``goals`` key (the REPL's own rule); ``hasSorry`` or
  ``hasUnsafe`` true means the step is never a proof, whatever the goals say.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Mapping, Sequence

from workbench.lean.errors import LeanGarbage, LeanProtocolError
from workbench.states import INACCESSIBLE_MARK, TURNSTILE, Goal, Hypothesis, parse_state, render_state

__all__ = [
    "READY_LINE",
    "goal_from_pantograph",
    "goal_to_pantograph",
    "state_from_pantograph",
    "Request",
    "Severity",
    "Message",
    "TacticOutcome",
    "LimitKind",
    "tactic_verdict",
    "GoalStartReply",
    "GoalTacticReply",
    "GoalPrintReply",
    "StatReply",
    "StartupLine",
    "goal_start",
    "goal_tactic",
    "goal_print",
    "goal_delete",
    "reset",
    "stat",
    "options_set",
    "decode_reply",
    "parse_goal_start",
    "parse_goal_tactic",
    "parse_goal_print",
    "parse_stat",
    "parse_empty",
    "parse_startup_line",
    "MIN_VERSION",
    "parse_version",
    "check_version",
    "lean_toolchain",
    "erase_macro_scopes",
    "frontend_process",
    "InvokedTactic",
    "CompilationUnit",
    "FrontendProcessReply",
    "parse_frontend_process",
    "parse_frontend_data",
    "frontend_data_json",
    "invoked_tactic_json",
    "invocation_goals_text",
    "state_from_invocation",
]

READY_LINE = "ready."


# --- Pantograph goal JSON (SPEC §1; moved here from states.py: this module owns Pantograph's spelling) ---


def _pp(obj: Mapping[str, Any] | None) -> str | None:
    if obj is None:
        return None
    return obj.get("pp")


def erase_macro_scopes(name: str) -> str:
    """``h._@.Mathlib.Foo._hyg.123`` → ``h``, as Lean's ``Name.eraseMacroScopes`` (macro scopes are the
    suffix from ``._@.``; the hygienic name is what precedes it)."""
    return name.split("._@.", 1)[0]


def goal_from_pantograph(obj: Mapping[str, Any]) -> Goal:
    """Convert one Pantograph ``Goal`` JSON object.

    Pantograph sanitises names before printing (``inst✝¹``), so ``userName`` already carries the
    dagger; it is added only if a server reports an inaccessible name without it. The goal's case tag
    (``userName``) is printed raw, macro scopes included (Delate.lean v0.3.4 L522, ``ofName`` without
    sanitising); LeanDojo erases them (ExtractData.lean v1.8.2 L123-125), and so do we.
    """
    try:
        target = _pp(obj["target"])
    except KeyError as e:
        raise ValueError(f"Pantograph goal without 'target': {dict(obj)!r}"[:300]) from e
    if target is None:
        raise ValueError("Pantograph goal target has no 'pp' text (printExprPretty must be on)")
    hyps = []
    for var in obj.get("vars", ()):
        name = var.get("userName", "")
        if var.get("isInaccessible") and INACCESSIBLE_MARK not in name:
            name += INACCESSIBLE_MARK
        hyps.append(Hypothesis(name=name, type=_pp(var.get("type")) or "", value=_pp(var.get("value"))))
    case = obj.get("userName")
    return Goal(target=target, hypotheses=tuple(hyps), case=erase_macro_scopes(case) if case else None)


def state_from_pantograph(goals: Sequence[Mapping[str, Any]]) -> str:
    return render_state(goal_from_pantograph(g) for g in goals)


def goal_to_pantograph(goal: Goal, name: str = "_uniq.0", first_var_id: int = 1) -> dict[str, Any]:
    """Pantograph ``Goal`` JSON for a goal (used by the simulator to answer like the real REPL)."""
    variables = []
    for i, hyp in enumerate(goal.hypotheses):
        var: dict[str, Any] = {
            "name": f"_uniq.{first_var_id + i}",
            "userName": hyp.name,
            "isInaccessible": INACCESSIBLE_MARK in hyp.name,
            "type": {"pp": hyp.type},
        }
        if hyp.value is not None:
            var["value"] = {"pp": hyp.value}
        variables.append(var)
    out: dict[str, Any] = {"name": name, "fragment": "tactic", "isConversion": False}
    if goal.case:
        out["userName"] = goal.case
    out["target"] = {"pp": goal.target}
    out["vars"] = variables
    return out


# --- requests ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    cmd: str
    payload: Mapping[str, Any] = field(default_factory=dict)

    def to_line(self) -> bytes:
        """One compact JSON line; ``json.dumps`` escapes newlines inside strings, so it is one line."""
        text = json.dumps({"cmd": self.cmd, "payload": dict(self.payload)}, ensure_ascii=False, separators=(",", ":"))
        return text.encode("utf-8") + b"\n"


def goal_start(*, copy_from: str | None = None, expr: str | None = None, levels: Sequence[str] = ()) -> Request:
    """``levels``: universe names ``expr`` may mention (``Sort u``). They are the elaborator's level names
    (Repl.lean v0.3.4 L370-371); ``copyFrom`` elaborates nothing and keeps the constant's own level
    parameters (L374-377, ``GoalState.create cInfo.type``), so they are only sent with ``expr``."""
    if (copy_from is None) == (expr is None):
        raise ValueError("goal.start needs exactly one of copy_from (a theorem name) or expr (a type)")
    if copy_from is not None:
        if levels:
            raise ValueError("goal.start: levels apply to expr only (copyFrom keeps the constant's own)")
        return Request("goal.start", {"copyFrom": copy_from})
    return Request("goal.start", {"expr": expr, "levels": list(levels)} if levels else {"expr": expr})


def goal_tactic(state_id: int, tactic: str, goal_id: int | None = None) -> Request:
    if not tactic.strip():
        # Not sent: Pantograph would answer a parse error, but an empty tactic is always a caller bug.
        raise ValueError("goal.tactic with an empty tactic")
    payload: dict[str, Any] = {"stateId": state_id, "tactic": tactic}
    if goal_id is not None:
        payload["goalId"] = goal_id
    return Request("goal.tactic", payload)


def goal_print(state_id: int) -> Request:
    # Without "goals": true the reply's goal list is empty (SPEC §1).
    return Request("goal.print", {"stateId": state_id, "goals": True})


def goal_delete(state_ids: Sequence[int]) -> Request:
    return Request("goal.delete", {"stateIds": list(state_ids)})


def reset() -> Request:
    return Request("reset", {})


def stat() -> Request:
    return Request("stat", {})


def options_set(*, timeout_ms: int | None = None, automatic_mode: bool | None = None,
                print_expr_ast: bool | None = None) -> Request:
    """Every key is optional (Protocol.lean v0.3.4 ``OptionsSet``: ``Option`` fields); ``printExprAST`` adds
    ``sexp`` to every Expression (Delate.lean v0.3.4 L446-448)."""
    payload: dict[str, Any] = {}
    if timeout_ms is not None:
        payload["timeout"] = int(timeout_ms)
    if automatic_mode is not None:
        payload["automaticMode"] = automatic_mode
    if print_expr_ast is not None:
        payload["printExprAST"] = print_expr_ast
    return Request("options.set", payload)


def frontend_process(*, file_name: str | None = None, file: str | None = None, read_header: bool = True,
                     inherit_env: bool = False, invocations: str | None = None, sorrys: bool = False,
                     type_errors_as_goals: bool = False, new_constants: bool = False) -> Request:
    """``frontend.process`` (Protocol.lean v0.3.4 L361-377 ``FrontendProcess``). Exactly one of ``fileName`` /
    ``file`` (Repl.lean v0.3.4 L191-197). The five Bool fields have Lean defaults but Lean's derived
    ``FromJson`` reads every non-Option field, so all are always sent (as PyPantograph does, server.py 66b8e47
    L330-338); ``invocations`` is the path of a file the REPL writes (v0.3.2+; a Bool in v0.3.1)."""
    if (file_name is None) == (file is None):
        raise ValueError("frontend.process needs exactly one of file_name (a path) or file (the text)")
    payload: dict[str, Any] = {"fileName": file_name} if file_name is not None else {"file": file}
    if invocations is not None:
        payload["invocations"] = invocations
    payload |= {"readHeader": read_header, "inheritEnv": inherit_env, "sorrys": sorrys,
                "typeErrorsAsGoals": type_errors_as_goals, "newConstants": new_constants}
    return Request("frontend.process", payload)


# --- replies -------------------------------------------------------------------------------------


class Severity(StrEnum):
    INFORMATION = "information"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Message:
    """One Lean message; ``data`` is the human-readable text. Positions do not take part in equality."""

    data: str
    severity: Severity = Severity.ERROR
    pos: tuple[int, int] | None = field(default=None, compare=False)
    end_pos: tuple[int, int] | None = field(default=None, compare=False)
    file_name: str | None = field(default=None, compare=False)
    kind: str | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return self.data

    @classmethod
    def from_json(cls, obj: Any, where: str) -> "Message":
        if isinstance(obj, str):  # older Pantograph: "tacticErrors": ["text", ...]
            return cls(data=obj)
        if not isinstance(obj, dict):
            raise LeanProtocolError("malformed", f"{where}: message is not an object: {obj!r}"[:300])
        data = obj.get("data")
        if not isinstance(data, str):
            raise LeanProtocolError("malformed", f"{where}: message without a 'data' string: {obj!r}"[:300])
        raw_sev = obj.get("severity", "error")
        try:
            severity = Severity(raw_sev)
        except ValueError:
            raise LeanProtocolError("malformed", f"{where}: unknown message severity {raw_sev!r}") from None
        return cls(
            data=data,
            severity=severity,
            pos=_pos(obj.get("pos")),
            end_pos=_pos(obj.get("endPos")),
            file_name=obj.get("fileName"),
            kind=obj.get("kind"),
        )


def _pos(obj: Any) -> tuple[int, int] | None:
    if isinstance(obj, dict) and isinstance(obj.get("line"), int) and isinstance(obj.get("column"), int):
        return (obj["line"], obj["column"])
    return None


class TacticOutcome(StrEnum):
    ADVANCED = "advanced"
    COMPLETE = "complete"
    LEAN_ERROR = "lean_error"
    PARSE_ERROR = "parse_error"
    REJECTED = "rejected"  # hasSorry / hasUnsafe: never a proof
    LIMIT = "limit"  # Lean gave up on the tactic: heartbeats or recursion depth (process fine)
    TIMED_OUT = "timed_out"  # Pantograph's own options.set timeout interrupted the tactic (process fine)


class LimitKind(StrEnum):
    HEARTBEATS = "heartbeats"
    MAX_RECURSION = "max_recursion"
    INTERRUPT = "interrupt"


# Lean rethrows these past Pantograph's error capture, so they arrive as {"error": "core", "desc": …}
# (lenianiva/Pantograph Repl.lean @0528a15, runCoreM: Exception.error -> "core", Exception.internal ->
# "internal" with the exception id's name, which is "interrupt" for a fired cancel token).
_HEARTBEATS = ("maximum number of heartbeats", "(deterministic) timeout")
_RECURSION = ("maximum recursion depth",)


def tactic_verdict(err: LeanProtocolError) -> "GoalTacticReply | None":
    """An ``{"error": …}`` answer to ``goal.tactic`` that is Lean's verdict on the tactic, as a reply;
    None for a real protocol error."""
    if err.kind == "internal" and err.desc == "interrupt":
        return GoalTacticReply(TacticOutcome.TIMED_OUT, messages=(Message(err.desc),), limit=LimitKind.INTERRUPT)
    if err.kind == "core":
        if any(k in err.desc for k in _HEARTBEATS):
            return GoalTacticReply(TacticOutcome.LIMIT, messages=(Message(err.desc),), limit=LimitKind.HEARTBEATS)
        if any(k in err.desc for k in _RECURSION):
            return GoalTacticReply(TacticOutcome.LIMIT, messages=(Message(err.desc),), limit=LimitKind.MAX_RECURSION)
    return None


@dataclass(frozen=True, slots=True)
class GoalStartReply:
    state_id: int
    root: str | None = None


@dataclass(frozen=True, slots=True)
class GoalTacticReply:
    outcome: TacticOutcome
    next_state_id: int | None = None
    goals: tuple[Goal, ...] = ()
    messages: tuple[Message, ...] = ()
    parse_error: str | None = None
    has_sorry: bool = False
    has_unsafe: bool = False
    limit: "LimitKind | None" = None  # LIMIT / TIMED_OUT: which limit stopped the tactic

    @property
    def state_text(self) -> str:
        return render_state(self.goals)


@dataclass(frozen=True, slots=True)
class GoalPrintReply:
    goals: tuple[Goal, ...]
    root_has_sorry: bool = False
    target_sexps: tuple[str | None, ...] = ()  # each goal's target as an s-expression (printExprAST on)


@dataclass(frozen=True, slots=True)
class StatReply:
    n_goals: int


@dataclass(frozen=True, slots=True)
class StartupLine:
    """What one stdout line before ``ready.`` means."""

    ready: bool = False
    error_kind: str | None = None  # set when the line is {"error": ..., "desc": ...}
    error_desc: str | None = None


def decode_reply(line: bytes | str, *, command: str) -> dict[str, Any]:
    """One reply line → its JSON object. Raises :class:`LeanGarbage` for anything that is not a JSON
    object and :class:`LeanProtocolError` for ``{"error": ..., "desc": ...}``."""
    text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        raise LeanGarbage(text.rstrip("\n"), command=command) from None
    if not isinstance(obj, dict):
        raise LeanGarbage(text.rstrip("\n"), command=command)
    if "error" in obj:
        raise LeanProtocolError(str(obj.get("error")), str(obj.get("desc", "")), command=command)
    return obj


def _field(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], command: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise LeanProtocolError("malformed", f"reply field {key!r} is {value!r}, expected {kind}", command=command)
    return value


def _goals(raw: Any, command: str) -> tuple[Goal, ...]:
    if not isinstance(raw, list):
        raise LeanProtocolError("malformed", f"'goals' is not a list: {raw!r}"[:300], command=command)
    try:
        return tuple(goal_from_pantograph(g) for g in raw)
    except (ValueError, TypeError, AttributeError) as e:
        raise LeanProtocolError("malformed", f"bad Goal JSON: {e}", command=command) from e


def parse_goal_start(obj: Mapping[str, Any]) -> GoalStartReply:
    state_id = _field(obj, "stateId", int, "goal.start")
    root = obj.get("root")
    return GoalStartReply(state_id=state_id, root=root if isinstance(root, str) else None)


def parse_goal_tactic(obj: Mapping[str, Any]) -> GoalTacticReply:
    cmd = "goal.tactic"
    has_sorry = bool(obj.get("hasSorry", False))
    has_unsafe = bool(obj.get("hasUnsafe", False))
    raw_messages = obj.get("messages")
    if raw_messages is None:
        raw_messages = obj.get("tacticErrors", [])
    if not isinstance(raw_messages, list):
        raise LeanProtocolError("malformed", f"'messages' is not a list: {raw_messages!r}"[:300], command=cmd)
    messages = tuple(Message.from_json(m, f"{cmd} message {i}") for i, m in enumerate(raw_messages))
    if "goals" not in obj and "nextStateId" in obj:
        raise LeanProtocolError("malformed", f"success reply without 'goals': {dict(obj)!r}"[:300], command=cmd)
    if "goals" not in obj:  # the REPL's rule: no goals key => the tactic failed
        parse_error = obj.get("parseError")
        if parse_error is not None:
            return GoalTacticReply(TacticOutcome.PARSE_ERROR, parse_error=str(parse_error), messages=messages,
                                   has_sorry=has_sorry, has_unsafe=has_unsafe)
        return GoalTacticReply(TacticOutcome.LEAN_ERROR, messages=messages, has_sorry=has_sorry, has_unsafe=has_unsafe)
    # From 0.3.1 every success carries hasSorry/hasUnsafe; a server without them cannot tell a sorry
    # from a proof, so a missing flag is a protocol error, never a default (SPEC §1).
    for flag in ("hasSorry", "hasUnsafe"):
        _field(obj, flag, bool, cmd)
    goals = _goals(obj["goals"], cmd)
    next_state_id = _field(obj, "nextStateId", int, cmd)
    if has_sorry or has_unsafe:
        outcome = TacticOutcome.REJECTED
    elif goals:
        outcome = TacticOutcome.ADVANCED
    else:
        outcome = TacticOutcome.COMPLETE
    return GoalTacticReply(outcome, next_state_id=next_state_id, goals=goals, messages=messages,
                           has_sorry=has_sorry, has_unsafe=has_unsafe)


def parse_goal_print(obj: Mapping[str, Any]) -> GoalPrintReply:
    # We always ask with "goals": true; a reply without them is a server that ignored it (before 0.2.23).
    if "goals" not in obj:
        raise LeanProtocolError("malformed", "goal.print reply without 'goals' (Pantograph older than 0.2.23?)",
                                command="goal.print")
    goals = _goals(obj["goals"], "goal.print")
    sexps = tuple((g.get("target") or {}).get("sexp") if isinstance(g, dict) else None for g in obj["goals"])
    return GoalPrintReply(goals=goals, root_has_sorry=bool(obj.get("rootHasSorry", False)),
                          target_sexps=tuple(x if isinstance(x, str) else None for x in sexps))


@dataclass(frozen=True, slots=True)
class InvokedTactic:
    """One tactic invocation of a processed file (Protocol.lean v0.3.4 L378-385 ``InvokedTactic``).

    ``goal_before`` / ``goal_after``: Lean's ``Meta.ppGoal`` of every goal, joined by ONE newline, ``""`` for
    none (Frontend/Elab.lean v0.3.4 L88-89); :func:`state_from_invocation` gives our canonical text."""

    goal_before: str
    goal_after: str
    tactic: str
    used_constants: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CompilationUnit:
    """One command of a processed file (Protocol.lean v0.3.4 L387-400). ``boundary``: UTF-8 byte offsets
    ``[start, end)`` of the command (Repl.lean v0.3.4 L205). ``invocations``: from the invocations file,
    None when none was asked for."""

    boundary: tuple[int, int]
    messages: tuple[Message, ...] = ()
    n_invocations: int | None = None
    goal_state_id: int | None = None
    goals: tuple[Goal, ...] | None = None
    goal_src_boundaries: tuple[tuple[int, int], ...] | None = None
    new_constants: tuple[str, ...] | None = None
    invocations: tuple[InvokedTactic, ...] | None = None


@dataclass(frozen=True, slots=True)
class FrontendProcessReply:
    units: tuple[CompilationUnit, ...]


def _pair(value: Any, where: str, command: str) -> tuple[int, int]:
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise LeanProtocolError("malformed", f"{where} is {value!r}, expected [start, end]", command=command)
    return (value[0], value[1])


def parse_frontend_process(obj: Mapping[str, Any]) -> FrontendProcessReply:
    """``{"units": [CompilationUnit...]}`` (Protocol.lean v0.3.4 L401-403; optional fields absent when
    ``none``, as Lean's derived ``ToJson`` omits them)."""
    cmd = "frontend.process"
    raw_units = _field(obj, "units", list, cmd)
    units = []
    for i, u in enumerate(raw_units):
        if not isinstance(u, dict):
            raise LeanProtocolError("malformed", f"units[{i}] is not an object", command=cmd)
        raw_messages = u.get("messages", [])
        if not isinstance(raw_messages, list):
            raise LeanProtocolError("malformed", f"units[{i}].messages is not a list", command=cmd)
        messages = tuple(Message.from_json(m, f"{cmd} units[{i}] message {j}") for j, m in enumerate(raw_messages))
        n_inv = u.get("nInvocations")
        state_id = u.get("goalStateId")
        new_constants = u.get("newConstants")
        if new_constants is not None and not (isinstance(new_constants, list) and all(isinstance(c, str) for c in new_constants)):
            raise LeanProtocolError("malformed", f"units[{i}].newConstants is {new_constants!r}"[:300], command=cmd)
        srcs = u.get("goalSrcBoundaries")
        units.append(CompilationUnit(
            boundary=_pair(u.get("boundary"), f"units[{i}].boundary", cmd),
            messages=messages,
            n_invocations=n_inv if isinstance(n_inv, int) else None,
            goal_state_id=state_id if isinstance(state_id, int) else None,
            goals=_goals(u["goals"], cmd) if "goals" in u else None,
            goal_src_boundaries=(tuple(_pair(b, f"units[{i}].goalSrcBoundaries", cmd) for b in srcs)
                                 if isinstance(srcs, list) else None),
            new_constants=tuple(new_constants) if new_constants is not None else None,
        ))
    return FrontendProcessReply(tuple(units))


def parse_frontend_data(text: str, reply: FrontendProcessReply, *, where: str = "invocations file") -> FrontendProcessReply:
    """Attach the invocations file (Repl.lean v0.3.4 L236-239: ``{"units": [{"invocations": [...]}...]}``, one
    element per unit of the reply, same order) to ``reply``'s units, as PyPantograph zips them (server.py 66b8e47
    L342-347). Raises LeanProtocolError when the file is not that shape or its unit count differs."""
    cmd = "frontend.process"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise LeanProtocolError("malformed", f"{where}: not JSON ({e})", command=cmd) from None
    units = data.get("units") if isinstance(data, dict) else None
    if not isinstance(units, list) or len(units) != len(reply.units):
        n = len(units) if isinstance(units, list) else "no"
        raise LeanProtocolError("malformed", f"{where}: {n} units for a reply of {len(reply.units)}", command=cmd)
    out = []
    for i, (unit, data_unit) in enumerate(zip(reply.units, units)):
        raw = data_unit.get("invocations") if isinstance(data_unit, dict) else None
        if not isinstance(raw, list):
            raise LeanProtocolError("malformed", f"{where}: units[{i}] has no invocations list", command=cmd)
        invs = []
        for j, inv in enumerate(raw):
            at = f"{where}: units[{i}].invocations[{j}]"
            if not isinstance(inv, dict):
                raise LeanProtocolError("malformed", f"{at} is not an object", command=cmd)
            fields = [inv.get(k) for k in ("goalBefore", "goalAfter", "tactic")]
            used = inv.get("usedConstants", [])
            if not all(isinstance(f, str) for f in fields) or not isinstance(used, list):
                raise LeanProtocolError("malformed", f"{at}: {inv!r}"[:300], command=cmd)
            invs.append(InvokedTactic(*fields, used_constants=tuple(str(c) for c in used)))
        out.append(replace(unit, invocations=tuple(invs)))
    return FrontendProcessReply(tuple(out))


def invoked_tactic_json(inv: InvokedTactic) -> dict[str, Any]:
    """Pantograph's JSON for one invocation (the simulator writes the file the REPL would)."""
    return {"goalBefore": inv.goal_before, "goalAfter": inv.goal_after, "tactic": inv.tactic,
            "usedConstants": list(inv.used_constants)}


def frontend_data_json(units: Sequence[Sequence[InvokedTactic]]) -> str:
    """The invocations file as Pantograph writes it: ``toJson data |>.compress`` (one compact line)."""
    data = {"units": [{"invocations": [invoked_tactic_json(i) for i in unit]} for unit in units]}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def invocation_goals_text(goals: Sequence[Goal]) -> str:
    """Goals as an invocation prints them: each goal's ``Meta.ppGoal`` joined by one ``"\n"``, ``""`` for none
    (Frontend/Elab.lean v0.3.4 L88-89 ``Format.joinSep … "\n"``)."""
    return "\n".join(render_state((g,)) for g in goals)


def state_from_invocation(text: str) -> str:
    """An invocation's goal text → the canonical LeanDojo text (blank line between goals, ``no goals``).

    Goals are joined by a single newline, so they are split where Lean's layout shows a new goal: a line at
    column 0 after the ``⊢`` line (a target's continuation lines are indented by ``ppGoal``)."""
    if not text.strip():
        return render_state(())
    blocks: list[list[str]] = [[]]
    after_target = False
    for line in text.replace("\r\n", "\n").split("\n"):
        if after_target and line and not line[:1].isspace():
            blocks.append([])
            after_target = False
        blocks[-1].append(line)
        if line.startswith(TURNSTILE):
            after_target = True
    return render_state(g for b in blocks for g in parse_state("\n".join(b)))


def parse_stat(obj: Mapping[str, Any]) -> StatReply:
    return StatReply(n_goals=_field(obj, "nGoals", int, "stat"))


def parse_empty(obj: Mapping[str, Any]) -> None:
    """``goal.delete`` and ``options.set`` answer ``{}``; extra keys are tolerated."""
    return None


# 0.3.1 brought hasSorry/hasUnsafe/messages (SPEC §1); in 0.3.1-0.3.2 a tactic sent with goalId sees only
# that goal (Goal.lean v0.3.1 L220-238), which the walk's goal alignment relies on not happening; 0.3.4
# isolates the REPL's stdout, so a tactic that prints cannot corrupt the reply line (Repl.lean v0.3.4 L275-277).
MIN_VERSION = (0, 3, 4)
_VERSION = re.compile(r"^\s*v?(\d+)\.(\d+)\.(\d+)(?:[/\s]|$)")
# Each Pantograph tag's lean-toolchain (lenianiva/Pantograph tags v0.3.0-v0.3.4); later mainline releases
# build for v4.21.0 or newer, and a backport build names its toolchain (``0.3.7/v4.21.0``).
PANTOGRAPH_TOOLCHAINS = {(0, 3, 0): "v4.18.0", (0, 3, 1): "v4.18.0", (0, 3, 2): "v4.20.1", (0, 3, 3): "v4.20.1",
                         (0, 3, 4): "v4.21.0"}
_BACKPORT = re.compile(r"^\s*v?\d+\.\d+\.\d+/(v\d+\.\d+\.\d+\S*)")


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``repl --version`` output (``0.3.4``, ``0.3.7/v4.21.0``) → (0, 3, 7); None when it is not a version."""
    m = _VERSION.match(text)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def check_version(text: str) -> tuple[int, int, int] | None:
    """Refuse a Pantograph older than :data:`MIN_VERSION` (ValueError naming both versions); an
    unparsable version (e.g. the simulator's) is allowed and returns None."""
    version = parse_version(text)
    if version is not None and version < MIN_VERSION:
        minimum = ".".join(map(str, MIN_VERSION))
        raise ValueError(f"Pantograph {text.strip()} is too old: the workbench needs {minimum} or newer "
                         "(before 0.3.1 there is no hasSorry, so a sorry would look like a proof; in 0.3.1-0.3.2 a "
                         "tactic sent with goalId sees only that goal; before 0.3.4 a tactic's output can corrupt "
                         "the reply line)")
    return version


def lean_toolchain(text: str) -> str | None:
    """The Lean toolchain a ``repl --version`` output was built for (``0.3.4`` → ``v4.21.0``,
    ``0.3.7/v4.21.0`` → ``v4.21.0``); None when it does not say (a later mainline release, the simulator)."""
    m = _BACKPORT.match(text)
    if m:
        return m.group(1)
    version = parse_version(text)
    return PANTOGRAPH_TOOLCHAINS.get(version) if version is not None else None


def parse_startup_line(line: bytes | str) -> StartupLine:
    text = (line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line).strip()
    if text == READY_LINE:
        return StartupLine(ready=True)
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            return StartupLine()
        if isinstance(obj, dict) and "error" in obj:
            return StartupLine(error_kind=str(obj["error"]), error_desc=str(obj.get("desc", "")))
    return StartupLine()
