"""The broken variants the doctor is tested against behave as the old or misconfigured systems they copy.

* simulator ``--report-version``: Pantograph's ``--version`` prints the bare version (Main.lean v0.3.4 L56-60);
* simulator ``--omit-sorry-flags``: ``goal.tactic`` replies before 0.3.1 had no ``hasSorry``/``hasUnsafe``/``messages``
  (Protocol.lean v0.3.1 added them to GoalTacticResult; SPEC §1);
* simulator ``--reserve-mb``: an import maps memory before ``ready.``; past RLIMIT_AS Lean's runtime prints
  ``INTERNAL PANIC: out of memory`` and exits;
* stand-in SGLang ``server_version``: the endpoints and answer shapes of that release (sglang_facts.md §1, §4);
* stand-in sidecar ``serve_info``: ``workbench serve-encoder``'s ``/info`` (encode/server.py).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import urllib.error
import urllib.request

import pytest

from workbench.encode.sidecar import SidecarEncoder
from workbench.encode.standin_sidecar import StandinSidecar
from workbench.lean import LeanPool, LeanProcess, LeanStartError
from workbench.lean import protocol as P
from workbench.policy.standin_server import ScriptedCompleter, StandinSGLang, legacy_finish_reason


def test_report_version_is_what_an_old_pantograph_prints_and_the_pool_refuses_it(sim_lean):
    config = sim_lean("--report-version", "0.2.14")
    out = subprocess.run([*config.command, "--version"], capture_output=True, text=True, check=True).stdout
    assert P.parse_version(out) == (0, 2, 14) and "workbench-lean-simulator" in out

    async def start():
        async with LeanPool(config):
            pass

    with pytest.raises(LeanStartError, match="0.2.14 .* too old"):
        asyncio.run(start())


def test_omit_sorry_flags_answers_as_before_0_3_1(sim_lean):
    async def go():
        proc = await LeanProcess.start(sim_lean("--omit-sorry-flags"))
        try:
            state = (await proc.goal_start(expr="∀ (n : Nat), n = n")).state_id
            return await proc.request(P.goal_tactic(state, "sorry"))
        finally:
            await proc.close()

    reply = asyncio.run(go())
    assert "goals" in reply and not {"hasSorry", "hasUnsafe", "messages"} & set(reply)


def test_reserve_mb_fails_the_start_past_the_memory_cap_only_when_importing(sim_lean):
    capped = dict(memory_limit_bytes=1024**3)

    async def start(config):
        proc = await LeanProcess.start(config)
        await proc.close()

    with pytest.raises(LeanStartError, match="INTERNAL PANIC: out of memory"):
        asyncio.run(start(sim_lean("--reserve-mb", "1500", **capped)))
    asyncio.run(start(sim_lean("--reserve-mb", "1500", imports=("Init",), **capped)))  # Init alone is small


def _get(url: str) -> tuple[int, dict | None]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None


@pytest.mark.parametrize(("version", "expected"), [
    ("0.5.23", {"/get_server_info": (200, True), "/server_info": (200, True), "/get_server_args": (404, None)}),
    ("0.5.5", {"/get_server_info": (200, True), "/server_info": (404, None), "/get_server_args": (404, None)}),
    ("0.3.6.post1", {"/get_server_info": (200, False), "/server_info": (404, None), "/get_server_args": (404, None)}),
    ("0.3.0", {"/get_server_info": (404, None), "/server_info": (404, None), "/get_server_args": (200, False)}),
])
def test_standin_server_info_endpoints_follow_the_release(version, expected):
    """(status, has ``version``) per endpoint: 0.3.6.post1 added /get_server_info, 0.3.6.post2 its ``version``,
    0.5.6 /server_info; before 0.3.6.post1 only /get_server_args."""
    with StandinSGLang(server_version=version) as server:
        for path, (status, has_version) in expected.items():
            got, body = _get(server.url + path)
            assert got == status, path
            if body is not None:
                assert ("version" in body) is has_version, path


def test_standin_answer_shapes_follow_the_release():
    def sample(version: str) -> dict:
        with StandinSGLang(completer=ScriptedCompleter(["simp\n\nmore"]), server_version=version) as server:
            req = urllib.request.Request(server.url + "/generate", method="POST", data=json.dumps(
                {"text": "p", "sampling_params": {"stop": ["\n\n"]}, "return_logprob": True}).encode())
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())["meta_info"]

    new, old, older = sample("0.5.23"), sample("0.3.0"), sample("0.2.5")
    assert new["finish_reason"] == {"type": "stop", "matched": "\n\n"} and "output_token_logprobs" in new
    assert old["finish_reason"] == "FINISH_MATCHED_STR: \n\n" and "output_token_logprobs" in old
    assert "decode_token_logprobs" in older and "output_token_logprobs" not in older
    assert legacy_finish_reason({"type": "length", "length": 128}) == "FINISH_LENGTH: 128"
    assert legacy_finish_reason({"type": "stop", "matched": 100001}) == "FINISH_MATCHED_TOKEN: 100001"


def test_standin_sidecar_info_is_an_identity_the_client_adopts():
    async def go(url):
        async with SidecarEncoder(url, hidden_size=4096) as encoder:
            return await encoder.connect(), encoder.server_info

    with StandinSidecar(serve_info=True) as server:
        identity, info = asyncio.run(go(server.url))
    assert identity.model == "standin-sidecar" and identity.dim == 4096 and info["standin"] is True
    with StandinSidecar() as server:
        assert _get(server.url + "/info")[0] == 404


def test_the_simulator_says_it_is_the_simulator_without_a_reported_version(sim_lean):
    out = subprocess.run([*sim_lean().command, "--version"], capture_output=True, text=True, check=True).stdout
    assert P.parse_version(out) is None and out.startswith("workbench-lean-simulator")
