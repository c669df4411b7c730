"""`workbench doctor`'s SGLang checks against the stand-in SGLang and its broken variants (issue 22).

Upstream facts pinned here (SGLang release wheels, /work/notes/sglang_facts.md): ``finish_reason`` is an object
from 0.3.1 (sgl-project/sglang PR #1407), ``"FINISH_LENGTH: n"``-style strings in 0.1.18-0.3.0 (0.3.0
schedule_batch.py:60-92); ``meta_info.output_token_logprobs`` from 0.2.6 (``decode_token_logprobs`` in
0.1.15-0.2.5); ``/get_server_info`` from 0.3.6.post1, its ``version`` from 0.3.6.post2, ``/server_info`` from 0.5.6,
only ``/get_server_args`` before; ``/health`` 503 during warm-up from 0.4.10.post2 (0.5.23 http_server.py:721-799);
a call with n samples is n scheduled sequences (io_struct.py _normalize_batch_inputs) and at most
``--max-running-requests`` run at once (scheduler.py get_new_batch_prefill).
"""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest
from doctor_helpers import by_name, dead_url

from workbench.doctor import Verdict
from workbench.doctor.checks import STAND_IN
from workbench.doctor.sglang import RampLevel, check_sglang, find_knee, server_info_check
from workbench.policy.capacity import GenerationCapacity
from workbench.policy.sglang import SGLangConfig
from workbench.policy.standin_server import GenerateFaults, RetrievalCompleter, ScriptedCompleter, StandinSGLang


@pytest.fixture(scope="module")
def completer(theorems):
    return RetrievalCompleter(theorems)


def _check(url, states, fast, **config):
    return asyncio.run(check_sglang(SGLangConfig(url=url, **config), states[:4], fast))


def test_a_healthy_server_passes_and_the_knee_is_where_its_capacity_puts_it(completer, states, fast):
    # 32 sequences at once, 0.2 s each; a ramp call is 8 sequences. p50 climbs once more than half the calls
    # wait: 8 L > 2 x 32, so first at L = 16 (at 8 calls, 4 run and 4 wait one round).
    server = StandinSGLang(completer=completer, capacity=GenerationCapacity(32),
                           faults=GenerateFaults(latency_s=0.2, loading_health_checks=3))
    with server:
        found = _check(server.url, states, fast)
    rows = by_name(found.checks)
    assert all(c.label == STAND_IN for c in found.checks)
    assert [c.name for c in found.checks if c.verdict is Verdict.FAIL] == []
    health = rows["/health during loading"]
    assert health.verdict is Verdict.PASS and health.details["503"] == 3 and "3 503" in health.found
    assert rows["/get_server_info version"].found == "/get_server_info: 0.5.23"
    assert rows["finish_reason"].verdict is Verdict.PASS and rows["logprobs"].found == "in 18/18 samples"
    assert rows["latency n=1"].details["calls"] == 2 and rows["latency n=8"].details["p50_s"] >= 0.2
    knee = rows["concurrency before latency climbs"]
    assert knee.details["knee_calls"] == 16 and knee.details["flat_up_to_calls"] == 8
    assert knee.verdict is Verdict.PASS  # 8 calls in flight: the README plan's lower end
    (table,) = found.tables
    assert [row[0] for row in table.rows] == [1, 2, 4, 8, 16]


def test_a_server_with_room_for_fewer_calls_than_the_plan_warns(completer, states, fast):
    server = StandinSGLang(completer=completer, capacity=GenerationCapacity(8), faults=GenerateFaults(latency_s=0.2))
    with server:
        knee = by_name(_check(server.url, states, fast).checks)["concurrency before latency climbs"]
    # one call at a time: at 2 calls one waits (p50 is still the fast one), at 4 calls three do
    assert knee.details["knee_calls"] == 4 and knee.details["flat_up_to_calls"] == 2
    assert knee.verdict is Verdict.WARN and "--max-running-requests" in knee.todo


def test_an_old_server_answers_finish_reason_as_a_string_and_fails(completer, states, fast):
    with StandinSGLang(completer=completer, server_version="0.3.0") as server:
        rows = by_name(_check(server.url, states, fast).checks)
    info = rows["/get_server_info version"]
    assert info.verdict is Verdict.UNKNOWN and "/get_server_args" in info.found
    reason = rows["finish_reason"]
    assert reason.verdict is Verdict.FAIL and "FINISH_" in reason.found and "PR #1407" in reason.todo
    assert rows["logprobs"].verdict is Verdict.PASS  # output_token_logprobs since 0.2.6
    assert "latency n=1" not in rows  # the policy refuses these answers: nothing else to measure


def test_a_server_before_0_2_6_spells_the_logprob_key_differently(completer, states, fast):
    with StandinSGLang(completer=completer, server_version="0.2.5") as server:
        rows = by_name(_check(server.url, states, fast).checks)
    logprobs = rows["logprobs"]
    assert logprobs.verdict is Verdict.FAIL and "decode_token_logprobs" in logprobs.found
    assert "before 0.2.6" in logprobs.todo and "score 0" in logprobs.todo


def test_missing_logprobs_fail(completer, states, fast):
    with StandinSGLang(completer=completer, faults=GenerateFaults(omit_logprobs=True)) as server:
        rows = by_name(_check(server.url, states, fast).checks)
    assert rows["logprobs"].verdict is Verdict.FAIL and rows["logprobs"].found.startswith("in 0/")
    assert "drops return_logprob" in rows["logprobs"].todo
    assert rows["finish_reason"].verdict is Verdict.PASS


def test_a_server_that_never_leaves_503_fails_and_nothing_else_is_asked(completer, states, fast):
    server = StandinSGLang(completer=completer, faults=GenerateFaults(loading_health_checks=10**9))
    with server:
        found = _check(server.url, states, dataclasses.replace(fast, server_wait_s=0.5))
    health = by_name(found.checks)["/health during loading"]
    assert health.verdict is Verdict.FAIL and "never left 503" in health.todo and "{server_wait}" in health.todo
    assert health.details["503"] >= 2 and server.counters.generate_requests == 0
    assert found.checks[-1].verdict is Verdict.SKIP


def test_nothing_listening_fails_naming_the_url(states, fast):
    url = dead_url()
    health = by_name(_check(url, states, dataclasses.replace(fast, server_wait_s=0.5)).checks)["/health during loading"]
    assert health.verdict is Verdict.FAIL and url in health.todo and "{server_url}" in health.todo


def test_samples_cut_by_max_new_tokens_yield_no_tactic(states, fast):
    with StandinSGLang(completer=ScriptedCompleter(["simp only [Nat.add_comm, Nat.mul_comm, two_mul] at h ⊢"])) as server:
        rows = by_name(_check(server.url, states, fast, max_new_tokens=4).checks)
    cut = rows["cut by max_new_tokens"]
    assert cut.verdict is Verdict.FAIL and cut.details["share"] == 1 and "{prompt_format}" in cut.todo
    assert rows["samples yielding a tactic"].verdict is Verdict.FAIL


@pytest.mark.parametrize(("path", "info", "verdict", "text"), [
    ("/get_server_info", {"version": "0.4.6"}, Verdict.PASS, "/health answers 200 before warm-up"),
    ("/get_server_info", {"version": "0.5.23"}, Verdict.PASS, "0.5.23"),
    ("/get_server_info", {"model_path": "m"}, Verdict.UNKNOWN, "SGLang 0.3.6.post1"),
    ("/get_server_info", {"version": "v-next"}, Verdict.UNKNOWN, "v-next"),
    (None, {}, Verdict.UNKNOWN, "no server-info endpoint"),
])
def test_server_info_rows(path, info, verdict, text):
    row = server_info_check(path, info, None)
    assert row.verdict is verdict and text in row.found + row.todo


def test_the_knee_needs_both_the_factor_and_a_real_rise():
    levels = [RampLevel(1, 0.02, 0.02, 1.0), RampLevel(2, 0.05, 0.05, 2.5), RampLevel(4, 0.4, 0.5, 20.0)]
    assert find_knee(levels, 1.5).calls == 2
    assert find_knee(levels, 1.5, min_rise_s=0.1).calls == 4
    assert find_knee(levels[:2], 1.5, min_rise_s=0.1) is None


def test_the_recording_transport_hands_the_policy_the_same_answer(completer, states):
    """The doctor reads raw answers beside the policy: what the policy parses must be what the server sent."""
    from workbench.doctor.sglang import RecordingTransport
    from workbench.policy.sglang import SGLangPolicy

    async def go(url):
        recorder = RecordingTransport(httpx.AsyncHTTPTransport())
        async with SGLangPolicy(SGLangConfig(url=url), transport=recorder) as policy:
            cands = await policy.candidates(states[0], 4, theorem="t")
        return cands, recorder.log

    with StandinSGLang(completer=completer) as server:
        cands, log = asyncio.run(go(server.url))
    generate = [e for e in log if e.path == "/generate"]
    assert len(generate) == 1 and len(generate[0].json()) == 4 and cands
    assert {c.raw_text for c in cands} <= {item["text"] for item in generate[0].json()}


def test_a_server_without_sglangs_generate_fails_naming_the_url_setting(states, fast):
    """Here the encoder's URL given as SGLang's: /health answers, /generate is 404 (sglang_facts §8)."""
    from workbench.encode.standin_sidecar import StandinSidecar

    with StandinSidecar() as not_sglang:
        rows = by_name(_check(not_sglang.url, states, fast).checks)
    generate = rows["/generate with the prover prompt"]
    assert generate.verdict is Verdict.FAIL and "HTTP 404" in generate.found and "{server_url}" in generate.todo
    assert "finish_reason" not in rows
