import asyncio
import socket

import pytest

from workbench.policy import PROMPT_FORMATS, PolicyProtocolError, PolicyUnavailable, SGLangConfig, SGLangPolicy
from workbench.policy.breaker import BreakerConfig
from workbench.policy.errors import CircuitBreakerOpen, GenerationFailed
from workbench.policy.prompt import build_prompt
from workbench.policy.sglang import parse_generate_response
from workbench.policy.standin_server import GenerateFaults, ScriptedCompleter, StandinSGLang

STATE = "n : ℕ\n⊢ n + 0 = n"
SCRIPT = {STATE: ["```lean4\nsimp\n```", "omega", "intro  x\nsimp", "sorry", "rfl"], "*": ["skip"]}


@pytest.fixture
def server():
    with StandinSGLang(ScriptedCompleter(SCRIPT)) as s:
        yield s


CHAT = PROMPT_FORMATS["deepseek-chat"]


def _config(url, **kw):
    kw.setdefault("backoff_s", 0.001)
    kw.setdefault("startup_wait_s", 0.05)
    kw.setdefault("startup_poll_s", 0.01)
    kw.setdefault("prompt", CHAT)   # these scripts answer whole proofs (the chat shape)
    return SGLangConfig(url=url, **kw)


async def test_n_samples_in_one_request_with_logprobs(server):
    async with SGLangPolicy(_config(server.url, temperature=0.7, stop=("\n\n",))) as policy:
        cands = await policy.candidates(STATE, 5, theorem="t")
        assert policy.model_info["standin"] is True
        prov = policy.provenance()
    assert sorted(c.tactic for c in cands) == ["intro  x", "omega", "rfl", "simp"]   # sorry dropped
    assert [c.score for c in cands] == sorted((c.score for c in cands), reverse=True)   # best first
    assert all(c.score_kind == "logprob" and c.score < 0 and c.num_tokens for c in cands)
    simp = next(c for c in cands if c.tactic == "simp")   # sample 0: -0.05 per token
    assert simp.score == pytest.approx(-0.05 * simp.num_tokens) and simp.raw_text == "```lean4\nsimp\n```"
    (payload,) = server.requests
    assert payload["text"] == build_prompt(STATE, CHAT) and payload["return_logprob"] is True
    assert payload["sampling_params"] == {"n": 5, "temperature": 0.7, "top_p": 0.95, "max_new_tokens": 128,
                                          "stop": ["\n\n"]}
    assert prov["model_info"]["model_path"] == "workbench-standin-sglang" and prov["stats"]["forbidden"] == 1


async def test_single_mode_sends_n_requests(server):
    async with SGLangPolicy(_config(server.url, n_mode="single")) as policy:
        cands = await policy.candidates(STATE, 3, theorem="t")
    assert server.counters.generate_requests == 3
    assert all(p["sampling_params"]["n"] == 1 for p in server.requests)
    assert [c.tactic for c in cands] == ["simp"]   # each single request gets the script's first sample


async def test_auto_mode_falls_back_when_server_ignores_n(server):
    server.faults.ignore_n = True
    async with SGLangPolicy(_config(server.url)) as policy:
        cands = await policy.candidates(STATE, 4, theorem="t")
        assert policy.provenance()["effective_n_mode"] == "single"
        await policy.candidates(STATE, 2, theorem="t")
    assert cands and server.counters.generate_requests == 1 + 4 + 2


async def test_5xx_retried_once_then_the_step_fails(server):
    server.faults.fail_next = 1
    async with SGLangPolicy(_config(server.url)) as policy:
        assert len(await policy.candidates(STATE, 2, theorem="t")) == 2   # retry succeeded
        server.faults.fail_next = 2
        with pytest.raises(GenerationFailed, match="HTTP 500") as e:   # both attempts failed: no answer, not []
            await policy.candidates(STATE, 2, theorem="t")
        assert e.value.kind == "HTTP 500" and e.value.retry_helps
        assert len(await policy.candidates(STATE, 2, theorem="t")) == 2   # next step works again
        s = policy.stats
    assert (s.http_5xx, s.retries, s.failed_requests, s.failed_steps) == (3, 2, 1, 1)


async def test_timeout_counts_and_fails_the_step(server):
    server.faults.hang_next, server.faults.hang_s = 2, 0.5
    async with SGLangPolicy(_config(server.url, request_timeout_s=0.1)) as policy:
        with pytest.raises(GenerationFailed, match="timeout"):
            await policy.candidates(STATE, 2, theorem="t")
        assert policy.stats.timeouts == 2 and policy.stats.failed_steps == 1


async def test_one_failed_single_request_fails_the_step(server):
    server.faults.fail_next = 1   # the first request, not retried here
    async with SGLangPolicy(_config(server.url, n_mode="single", retries=0)) as policy:
        with pytest.raises(GenerationFailed):  # a step missing some of its samples is not a smaller answer
            await policy.candidates(STATE, 3, theorem="t")
        assert policy.stats.failed_requests == 1 and policy.stats.failed_steps == 1


async def test_malformed_json_names_the_endpoint(server):
    server.faults.malformed_next = 1
    async with SGLangPolicy(_config(server.url)) as policy:
        with pytest.raises(PolicyProtocolError, match=r"/generate: malformed JSON"):
            await policy.candidates(STATE, 2, theorem="t")


def test_bad_shapes_are_protocol_errors():
    with pytest.raises(PolicyProtocolError, match="no string 'text'"):
        parse_generate_response([{"meta_info": {}}], endpoint="E")
    with pytest.raises(PolicyProtocolError, match="output_token_logprobs"):
        parse_generate_response({"text": "x", "meta_info": {"output_token_logprobs": [["a", 1, None]]}}, endpoint="E")
    lps = [[-1.5, 1, "x"], [None, 2, None], [-0.5, 3, None]]
    (c,) = parse_generate_response({"text": "x", "meta_info": {"output_token_logprobs": lps}}, endpoint="E")
    assert c.logprob == -2.0 and c.num_tokens == 3


async def test_health_failure_is_unavailable(server):
    server.faults.health_status = 503
    lines = []
    with pytest.raises(PolicyUnavailable, match=rf"SGLang at {server.url} was not ready after 0.05s: "
                                                r"/health last answered HTTP 503"):
        async with SGLangPolicy(_config(server.url), notify=lines.append):
            pass
    assert lines and "giving up in" in lines[0] and server.url in lines[0]   # the countdown


async def test_circuit_breaker_on_refused_connections(server):
    policy = SGLangPolicy(_config(server.url, breaker=BreakerConfig(consecutive=3)))
    async with policy:
        server.stop()   # the server dies after start-up
        with pytest.raises(GenerationFailed, match="connection refused"):   # 2 refused attempts
            await policy.candidates(STATE, 2, theorem="t")
        with pytest.raises(PolicyUnavailable, match="3 generation calls in a row failed .connection refused x3.; "
                                                    "circuit breaker open"):
            await policy.candidates(STATE, 2, theorem="t")
        with pytest.raises(PolicyUnavailable):   # stays open, no more hammering
            await policy.candidates(STATE, 2, theorem="t")
        assert policy.stats.connection_errors == 3


async def test_unreachable_server_at_start():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PolicyUnavailable, match=r"not ready after 0.05s: /health last answered no answer \(ConnectError"):
        async with SGLangPolicy(_config(f"http://127.0.0.1:{port}")):
            pass


async def test_concurrency_is_bounded(server):
    import asyncio

    server.faults.latency_s = 0.02
    async with SGLangPolicy(_config(server.url, max_concurrency=2)) as policy:
        await asyncio.gather(*(policy.candidates(STATE, 2, theorem="t") for _ in range(6)))
    assert server.counters.max_in_flight <= 2


async def test_waits_through_the_loading_phase(server):
    server.faults.loading_health_checks = 3   # SGLang answers /health 503 until its warm-up generation is done
    lines = []
    async with SGLangPolicy(_config(server.url, startup_wait_s=5.0), notify=lines.append) as policy:
        assert await policy.candidates(STATE, 2, theorem="t")
    assert lines and all("HTTP 503" in line for line in lines)


async def test_4xx_fails_the_call_with_the_servers_message_and_never_trips_the_breaker():
    from workbench.policy import PolicyRequestRejected

    with StandinSGLang(ScriptedCompleter(SCRIPT), context_len=20) as server:
        async with SGLangPolicy(_config(server.url, breaker=BreakerConfig(consecutive=1, window=1))) as policy:
            for _ in range(3):
                with pytest.raises(PolicyRequestRejected, match="longer than the model's context length") as e:
                    await policy.candidates(STATE, 2, theorem="t")   # the prompt alone is > 20 stand-in tokens
                assert e.value.status == 400 and e.value.server_message.startswith("The input (") and not e.value.retry_helps
            stats = policy.provenance()["stats"]
        assert server.counters.generate_requests == 3   # not retried
    assert stats["http_4xx"] == {"400": 3} and stats["retries"] == 0 and stats["connection_errors"] == 0


async def test_abort_is_a_failed_call_retried_then_the_step_fails(server):
    server.faults.abort_next = 1
    async with SGLangPolicy(_config(server.url)) as policy:
        assert len(await policy.candidates(STATE, 2, theorem="t")) == 2   # the retry was answered
        server.faults.abort_next = 2
        with pytest.raises(GenerationFailed, match="abort"):
            await policy.candidates(STATE, 2, theorem="t")
        s = policy.stats
    assert (s.aborts, s.retries, s.failed_requests, s.failed_steps) == (3, 2, 1, 1)


async def test_truncated_samples_never_become_candidates_and_tokens_are_counted():
    long = "nlinarith [" + ", ".join(f"sq_nonneg (a - {i})" for i in range(40)) + "]"
    with StandinSGLang(ScriptedCompleter({STATE: ["simp", long]})) as server:
        async with SGLangPolicy(_config(server.url, max_new_tokens=16)) as policy:
            cands = await policy.candidates(STATE, 2, theorem="t")
            stats = policy.provenance()["stats"]
    assert [c.tactic for c in cands] == ["simp"]
    # "simp" + EOS = 2 tokens; the long one is cut at max_new_tokens = 16
    assert (stats["truncated"], stats["truncated_kept"], stats["completion_tokens"], stats["answered_requests"]) == \
        (1, 0, 18, 1)
    assert stats["completion_tokens_per_candidate"] == 18.0 and stats["completion_tokens_per_request"] == 18.0


async def test_breaker_raises_unavailable_exactly_when_it_trips(server):
    policy = SGLangPolicy(_config(server.url, breaker=BreakerConfig(consecutive=4), n_mode="single"))
    async with policy:
        server.stop()
        # 2 single requests x 2 attempts: the 4th refused connection trips it inside this call
        with pytest.raises(PolicyUnavailable, match="circuit breaker open"):
            await policy.candidates(STATE, 2, theorem="t")
        assert policy.stats.connection_errors == 4


@pytest.mark.parametrize("fault, kind", [("fail_503", "HTTP 503"), ("fail_500", "HTTP 500"), ("abort", "abort"),
                                         ("hang", "timeout"), ("malformed", "malformed answer")])
async def test_persistent_failures_of_any_kind_trip_the_breaker(server, fault, kind):
    """Issue 20: the breaker counted only refused connections over 30 s. SGLang's other ways of failing
    every call (sglang_facts.md: 503 queue full / request timeouts §6c, scheduler 500 §6a, 200 with
    finish_reason abort §6b, a hung scheduler) trip it too, after ``consecutive`` failed attempts."""
    f = server.faults
    if fault.startswith("fail_"):
        f.fail_next, f.fail_status = 100, int(fault[5:])
    elif fault == "abort":
        f.abort_next = 100
    elif fault == "hang":
        f.hang_next, f.hang_s = 100, 0.3
    else:
        f.malformed_next = 100
    async with SGLangPolicy(_config(server.url, request_timeout_s=0.05, breaker=BreakerConfig(consecutive=4))) as policy:
        failures = []
        with pytest.raises(CircuitBreakerOpen, match=rf"4 generation calls in a row failed \({kind} x4\)"):
            for _ in range(4):
                try:
                    await policy.candidates(STATE, 2, theorem="t")
                except (GenerationFailed, PolicyProtocolError) as e:
                    failures.append(e)
        assert failures, "a failed call before the breaker trips is an error, never an empty answer"
        with pytest.raises(CircuitBreakerOpen):
            await policy.candidates(STATE, 2, theorem="t")


async def test_a_failure_rate_trips_the_breaker_without_failures_in_a_row(server):
    """Every other call failing (a flapping server) never makes 3 in a row, but half of the last 6 did."""
    async with SGLangPolicy(_config(server.url, retries=0,
                                    breaker=BreakerConfig(consecutive=3, window=6, failure_rate=0.5))) as policy:
        outcomes = []
        with pytest.raises(CircuitBreakerOpen, match=r"3 of the last 6 generation calls failed \(HTTP 503 x3\)"):
            for _ in range(10):
                server.faults.fail_next, server.faults.fail_status = 1, 503
                with pytest.raises(GenerationFailed):
                    await policy.candidates(STATE, 2, theorem="t")
                outcomes.append("failed")
                outcomes.append(len(await policy.candidates(STATE, 2, theorem="t")))
        assert outcomes == ["failed", 2, "failed", 2, "failed", 2]  # the 7th call fills the window: 3 of 6 failed


async def test_4xx_answers_keep_the_breaker_closed(server):
    """A 4xx is the server answering about one request: failures around it are not 'in a row'."""
    with StandinSGLang(ScriptedCompleter(SCRIPT), context_len=20) as tiny:
        async with SGLangPolicy(_config(tiny.url, retries=0, breaker=BreakerConfig(consecutive=2))) as policy:
            from workbench.policy import PolicyRequestRejected

            for _ in range(3):
                tiny.faults.fail_next = 1
                with pytest.raises(GenerationFailed):
                    await policy.candidates(STATE, 2, theorem="t")
                with pytest.raises(PolicyRequestRejected):
                    await policy.candidates(STATE, 2, theorem="t")
            assert policy.breaker.tripped is None


async def test_a_connection_the_server_closed_while_idle_is_not_a_failure():
    """SGLang's uvicorn closes a kept-alive connection idle 5 s (timeout_keep_alive=5, 0.1.11 server.py:399
    through 0.5.21 environ.py:343); mining leaves the policy idle that long whenever Lean is slow. The next
    call must open a new connection, not fail or spend its retry."""
    import asyncio

    with StandinSGLang(ScriptedCompleter(SCRIPT), keep_alive_s=0.2) as server:
        async with SGLangPolicy(_config(server.url, retries=0)) as policy:
            assert len(await policy.candidates(STATE, 2, theorem="t")) == 2
            assert server._connections  # the policy keeps its connection alive
            assert await asyncio.to_thread(server.wait_connections_closed)  # the server closed the idle one
            assert len(await policy.candidates(STATE, 2, theorem="t")) == 2
            assert (policy.stats.retries, policy.stats.failed_requests) == (0, 0)


def test_clients_let_an_idle_connection_go_before_the_server_does():
    """Reusing a connection in the instant the server closes it fails ("Server disconnected without sending a
    response", encode/httpx#2487): the pool expires idle connections before SGLang's and serve-encoder's 5 s."""
    from workbench.encode.standin_sidecar import StandinSidecar
    from workbench.http_pool import pool_limits

    limits = pool_limits(4)
    assert limits.max_connections == limits.max_keepalive_connections == 4
    assert limits.keepalive_expiry < min(StandinSGLang.keep_alive_s, StandinSidecar.keep_alive_s)


def test_every_http_client_builds_its_pool_with_pool_limits(monkeypatch):
    """The three clients (SGLang policy, sidecar, doctor) each hand httpx ``pool_limits``: recorded at httpx's
    public constructors, so a client that builds its own ``httpx.Limits`` (httpx's 5 s expiry) fails here."""
    import httpx

    from workbench.doctor.checks import DoctorOptions
    from workbench.doctor.sglang import check_sglang
    from workbench.encode.sidecar import SidecarEncoder
    from workbench.http_pool import KEEPALIVE_EXPIRY_S

    seen: dict[str, httpx.Limits] = {}

    class Stop(Exception):
        pass

    def recording(cls, name, stop=False):
        init = cls.__init__

        def record(self, *args, **kwargs):
            seen[name] = kwargs.get("limits")
            if stop:
                raise Stop
            init(self, *args, **kwargs)
        monkeypatch.setattr(cls, "__init__", record)

    recording(httpx.AsyncClient, "client")
    built = {}
    SGLangPolicy(_config("http://127.0.0.1:9"))
    built["policy"] = seen.pop("client")
    SidecarEncoder("http://127.0.0.1:9", 8, concurrency=3)
    built["sidecar"] = seen.pop("client")
    recording(httpx.AsyncHTTPTransport, "doctor", stop=True)  # the doctor's pool is its transport's
    with pytest.raises(Stop):
        asyncio.run(check_sglang(_config("http://127.0.0.1:9"), ["⊢ True"], DoctorOptions()))
    built["doctor"] = seen.pop("doctor")
    assert all(isinstance(v, httpx.Limits) and v.keepalive_expiry == KEEPALIVE_EXPIRY_S for v in built.values()), built
    assert built["sidecar"].max_connections == 3
