"""The stand-in SGLang server's behaviours, each pinned to the SGLang source it models.

Sources (sgl-project/sglang, read at the commits named; 0.5.x series, version.py says 0.5.3rc2 at 0175ceec):
- python/sglang/srt/managers/schedule_batch.py @ 000eaffa: FINISH_LENGTH / FINISH_MATCHED_TOKEN /
  FINISH_MATCHED_STR / FINISH_ABORT ``to_json`` shapes; ``Req.check_finished`` order (length, then EOS,
  then stop strings in the decoded text).
- python/sglang/srt/managers/detokenizer_manager.py @ 000935bd: ``trim_matched_stop`` cuts the text
  before the matched stop string unless ``no_stop_trim``.
- python/sglang/srt/managers/tokenizer_manager.py @ 001067ff: ``_validate_one_request`` messages;
  ``_handle_abort_finish_reason`` (abort with status 400 -> ValueError, 503/500 -> HTTPException, no
  status -> the answer is returned as is, HTTP 200).
- python/sglang/srt/entrypoints/http_server.py @ 0025436e: ``/health`` answers 503 while
  ``ServerStatus.Starting``; ``/get_model_info`` has no such check; ``/generate`` turns a ValueError into
  400 ``{"error": {"message": ...}}`` (``_create_error_response``).
- python/sglang/srt/managers/io_struct.py (GenerateReqInput._validate_inputs): the no-input message.
"""

import httpx
import pytest

from workbench.policy.standin_server import (
    STANDIN_EOS_TOKEN_ID,
    GenerateFaults,
    ScriptedCompleter,
    StandinSGLang,
    finish_sample,
)


def test_length_is_checked_before_eos_and_stop_strings():
    # schedule_batch.py Req.check_finished: `len(output_ids) >= max_new_tokens` comes first
    text, tokens, reason = finish_sample("abcdefgh```", stop=["```"], max_new_tokens=2)
    assert (text, tokens, reason) == ("abcdefgh", 2, {"type": "length", "length": 2})
    text, tokens, reason = finish_sample("abcd", stop=[], max_new_tokens=2)   # token 2 is the EOS token
    assert reason == {"type": "length", "length": 2} and text == "abcd"


def test_eos_and_stop_strings():
    # FINISH_MATCHED_TOKEN.to_json: {"type": "stop", "matched": <token id>}; the EOS token is counted
    assert finish_sample("simp", stop=["```"], max_new_tokens=128) == \
        ("simp", 2, {"type": "stop", "matched": STANDIN_EOS_TOKEN_ID})
    # FINISH_MATCHED_STR + trim_matched_stop: text cut before the first occurrence of the matched string
    text, tokens, reason = finish_sample("simp\n\nrfl\n```", stop=["```", "\n\n"], max_new_tokens=128)
    assert (text, reason) == ("simp", {"type": "stop", "matched": "\n\n"}) and tokens == 2
    text, _, _ = finish_sample("simp\n\nrfl", stop=["\n\n"], max_new_tokens=128, no_stop_trim=True)
    assert text == "simp\n\n"
    assert finish_sample("", stop=[], max_new_tokens=8) == ("", 1, {"type": "stop", "matched": STANDIN_EOS_TOKEN_ID})


@pytest.fixture
def server():
    with StandinSGLang(ScriptedCompleter(["omega\n```"]), context_len=64) as s:
        yield s


def test_generate_meta_info_through_http(server):
    answer = httpx.post(f"{server.url}/generate", json={
        "text": "p", "sampling_params": {"n": 2, "max_new_tokens": 16, "stop": ["```"]}, "return_logprob": True},
        timeout=5).json()
    assert [a["text"] for a in answer] == ["omega\n"] * 2
    for a in answer:
        meta = a["meta_info"]
        assert meta["finish_reason"] == {"type": "stop", "matched": "```"}
        assert meta["completion_tokens"] == len(meta["output_token_logprobs"]) == 3


def test_context_length_errors_are_400_with_sglangs_message(server):
    r = httpx.post(f"{server.url}/generate", json={"text": "x" * 400, "sampling_params": {"max_new_tokens": 8}},
                   timeout=5)
    assert r.status_code == 400
    assert r.json() == {"error": {"message": "The input (100 tokens) is longer than the model's context length "
                                             "(64 tokens)."}}
    r = httpx.post(f"{server.url}/generate", json={"text": "x" * 200, "sampling_params": {"max_new_tokens": 32}},
                   timeout=5)
    assert r.status_code == 400 and r.json()["error"]["message"].startswith(
        "Requested token count exceeds the model's maximum context length of 64 tokens. You requested a total of "
        "82 tokens: 50 tokens from the input messages and 32 tokens for the completion.")
    r = httpx.post(f"{server.url}/generate", json={"sampling_params": {}}, timeout=5)
    assert r.status_code == 400 and r.json()["error"]["message"] == \
        "Either text, input_ids or input_embeds should be provided."


def test_loading_phase_answers_503_on_health_only(server):
    server.faults.loading_health_checks = 2
    assert [httpx.get(f"{server.url}/health", timeout=5).status_code for _ in range(3)] == [503, 503, 200]
    server.faults.loading_health_checks = 1
    assert httpx.get(f"{server.url}/get_model_info", timeout=5).status_code == 200   # no status check there


def test_abort_without_status_is_an_http_200_answer(server):
    server.faults = GenerateFaults(abort_next=1)
    r = httpx.post(f"{server.url}/generate", json={"text": "p", "sampling_params": {"n": 2, "max_new_tokens": 8}},
                   timeout=5)
    assert r.status_code == 200
    assert [a["meta_info"]["finish_reason"] for a in r.json()] == [
        {"type": "abort", "message": "Aborted", "status_code": None, "err_type": None}] * 2


def test_a_burst_of_connections_is_queued_not_reset():
    """SGLang listens through uvicorn.run with no backlog argument (0.4.10.post2 http_server.py:964), so
    uvicorn's default backlog of 2048 (uvicorn 0.30.6 config.py:211) queues a burst of new connections. With
    the stdlib's backlog of 5 about half of 32 concurrent calls were reset (the doctor's ramp failed in CI)."""
    import asyncio

    async def burst(url: str) -> list:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
            calls = (client.post("/generate", json={"text": "x", "sampling_params": {"n": 8}}) for _ in range(128))
            return await asyncio.gather(*calls, return_exceptions=True)

    with StandinSGLang(completer=ScriptedCompleter(["simp"])) as server:
        answers = [a for _ in range(3) for a in asyncio.run(burst(server.url))]
    assert [type(a).__name__ for a in answers if not isinstance(a, httpx.Response)] == []
    assert {a.status_code for a in answers} == {200}
