"""`workbench doctor`'s SGLang checks: the server mining will call, through the policy mining uses.

Generation goes through :class:`~workbench.policy.sglang.SGLangPolicy` (the walk's client, its prompt format
and its reading of the answers) over a transport that also keeps each raw answer, so the doctor sees both
what the walk will see and the JSON behind it (a missing logprob key reads as score 0, silently). Only the
server-info endpoints, which the policy never asks, are read with a plain GET. Upstream facts: SGLang
releases read from PyPI wheels (/work/notes/sglang_facts.md); ``finish_reason`` is an object from 0.3.1
(sgl-project/sglang PR #1407), ``meta_info.output_token_logprobs`` from 0.2.6, ``/get_server_info`` has
``version`` from 0.3.6.post2, ``/server_info`` from 0.5.6, ``/health`` answers 503 during warm-up from
0.4.10.post2 and the port refuses connections while weights load.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Sequence

import httpx
from packaging.version import InvalidVersion, Version

from workbench.doctor.checks import STAND_IN, Check, DetailTable, DoctorOptions, Verdict, quantile
from workbench.http_pool import pool_limits
from workbench.policy.errors import PolicyError, PolicyProtocolError, PolicyRequestRejected, PolicyUnavailable
from workbench.policy.sglang import SGLangConfig, SGLangPolicy

__all__ = ["SGLangFindings", "check_sglang", "RecordingTransport", "Exchange", "find_knee"]

log = logging.getLogger(__name__)

SYSTEM = "sglang"
SOURCE = "sglang_facts.md (SGLang wheels 0.1.11-0.5.23)"
# The README's capacity plan: 100,000 theorems a day needs 8-18 calls of n = 8 in flight (README, "Capacity plan").
PLAN_CALLS_IN_FLIGHT = 8
LOGPROB_KEYS = ("output_token_logprobs", "decode_token_logprobs", "token_logprob")  # >= 0.2.6, 0.1.15-0.2.5, <= 0.1.14


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request as it went over the wire."""

    method: str
    path: str
    status: int | None  # None: no answer (connection refused, timeout)
    body: bytes
    elapsed_s: float
    error: str | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None


class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes requests to ``inner`` and keeps each exchange (its raw body) in ``log``."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.log: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        t0 = time.monotonic()
        try:
            response = await self.inner.handle_async_request(request)
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
            await response.aclose()
        except httpx.HTTPError as e:
            self.log.append(Exchange(request.method, request.url.path, None, b"", time.monotonic() - t0,
                                     type(e).__name__))
            raise
        self.log.append(Exchange(request.method, request.url.path, response.status_code, raw, time.monotonic() - t0))
        return httpx.Response(response.status_code, headers=response.headers, stream=httpx.ByteStream(raw),
                              request=request, extensions=response.extensions)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass(frozen=True)
class SGLangFindings:
    checks: tuple[Check, ...]
    tables: tuple[DetailTable, ...]


# --- readiness and identity ---------------------------------------------------------------------------


def _health_check(exchanges: Sequence[Exchange], ready: bool, waited_s: float, url: str, label: str | None) -> Check:
    """While weights load the port is not bound (connection refused); from 0.4.10.post2 ``/health`` answers 503
    until the warm-up generation succeeds, then 200 (0.5.23 http_server.py:721-799; sglang_facts §3)."""
    health = [e for e in exchanges if e.path == "/health"]
    refused = sum(e.status is None for e in health)
    unavailable = sum(e.status == 503 for e in health)
    seen = ", ".join(f"{n} {what}" for n, what in ((refused, "no answer"), (unavailable, "503")) if n)
    expected = "200 once loaded (503 or connection refused while loading)"
    if ready:
        found = f"200 after {len(health)} check(s) in {waited_s:.1f} s" + (f" (before that: {seen})" if seen else "")
        return Check(SYSTEM, "/health during loading", expected, found, Verdict.PASS, "", label, SOURCE + " §3",
                     {"checks": len(health), "refused": refused, "503": unavailable, "waited_s": round(waited_s, 2)})
    last = health[-1] if health else None
    found = f"not 200 after {waited_s:.0f} s: {seen or 'no answer'}" + (
        f"; last: HTTP {last.status}" if last and last.status else "")
    if unavailable:
        todo = ("the server never left 503: SGLang's warm-up generation is failing or still running; read its log, "
                "restart it, or wait longer ({server_wait})")
    else:
        todo = (f"nothing answers at {url}: start SGLang (python -m sglang.launch_server --model-path MODEL --port "
                "30000) and point {server_url} at it; if it is still loading weights, raise {server_wait}")
    return Check(SYSTEM, "/health during loading", expected, found, Verdict.FAIL, todo, label, SOURCE + " §3",
                 {"checks": len(health), "refused": refused, "503": unavailable, "waited_s": round(waited_s, 2)})


async def _server_info(client: httpx.AsyncClient) -> tuple[str | None, dict[str, Any]]:
    """The first server-info endpoint that answers: ``/get_server_info`` (0.3.6.post1-), ``/server_info``
    (0.5.6-), ``/get_server_args`` (-0.3.6)."""
    for path in ("/get_server_info", "/server_info", "/get_server_args"):
        try:
            response = await client.get(path)
        except httpx.HTTPError:
            return None, {}
        if response.status_code == 200:
            try:
                obj = response.json()
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return path, obj
    return None, {}


def server_info_check(path: str | None, info: dict[str, Any], label: str | None) -> Check:
    """``version`` is in ``/get_server_info`` from 0.3.6.post2 (0.3.6.post2 srt/server.py:531); a server older
    than that cannot say. Every version with the field answers ``finish_reason`` as an object (0.3.1-) and
    ``output_token_logprobs`` (0.2.6-); ``/health`` 503s during warm-up from 0.4.10.post2."""
    expected = "SGLang >= 0.3.1 (finish_reason object, output_token_logprobs)"
    source = SOURCE + " §1, §4"
    details = {k: info.get(k) for k in ("version", "model_path", "max_running_requests", "max_total_num_tokens",
                                         "max_req_input_len", "context_length") if k in info} | {"endpoint": path}
    if path is None:
        return Check(SYSTEM, "/get_server_info version", expected, "no server-info endpoint answers",
                     Verdict.UNKNOWN, "not SGLang, or a proxy in front of it: the /generate rows below decide",
                     label, source, details)
    raw = info.get("version")
    if raw is None:
        era = "SGLang <= 0.3.6 (only /get_server_args)" if path == "/get_server_args" else "SGLang 0.3.6.post1"
        return Check(SYSTEM, "/get_server_info version", expected, f"{path} without a version: {era}",
                     Verdict.UNKNOWN, "too old to report a version (before 0.3.6.post2, Dec 2024): finish_reason was a "
                     "string before 0.3.1 and logprobs were decode_token_logprobs before 0.2.6; the /generate rows "
                     "below decide; upgrading SGLang removes the doubt", label, source, details)
    try:
        version = Version(str(raw))
    except InvalidVersion:
        return Check(SYSTEM, "/get_server_info version", expected, f"{path}: version {raw!r}", Verdict.UNKNOWN,
                     "not an SGLang version: the /generate rows below decide", label, source, details)
    found = f"{path}: {raw}"
    if version < Version("0.3.1"):
        return Check(SYSTEM, "/get_server_info version", expected, found, Verdict.FAIL,
                     "finish_reason is a string before 0.3.1 (PR #1407): upgrade SGLang", label, source, details)
    if version < Version("0.4.10.post2"):
        found += " (/health answers 200 before warm-up ends: the first calls may be slow)"
    return Check(SYSTEM, "/get_server_info version", expected, found, Verdict.PASS, "", label, source, details)


# --- generation ---------------------------------------------------------------------------------------


def _samples(exchanges: Sequence[Exchange]) -> list[dict[str, Any]]:
    """The ``meta_info`` of every sample of every answered /generate."""
    out = []
    for e in exchanges:
        if e.path != "/generate" or e.status != 200:
            continue
        obj = e.json()
        for item in obj if isinstance(obj, list) else [obj]:
            if isinstance(item, dict):
                meta = item.get("meta_info")
                out.append(meta if isinstance(meta, dict) else {})
    return out


def _finish_reason_check(metas: Sequence[dict], refused: PolicyError | None, label: str | None) -> Check:
    """``meta_info.finish_reason`` is ``{"type": "stop"|"length"|"abort", …}`` from 0.3.1 (PR #1407; 0.3.1
    schedule_batch.py:55-102); before, ``"FINISH_LENGTH: 128"``-style strings (0.1.18-0.3.0)."""
    expected = '{"type": "stop" | "length" | "abort", …} (SGLang >= 0.3.1, PR #1407)'
    kinds: dict[str, int] = {}
    strings = []
    for meta in metas:
        fr = meta.get("finish_reason")
        key = fr.get("type", "?") if isinstance(fr, dict) else "string" if isinstance(fr, str) else "null"
        kinds[str(key)] = kinds.get(str(key), 0) + 1
        if isinstance(fr, str):
            strings.append(fr)
    found = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) or "no samples"
    if strings or isinstance(refused, PolicyProtocolError):
        example = f" (e.g. {strings[0]!r})" if strings else ""
        return Check(SYSTEM, "finish_reason", expected, f"a string{example}: {found}", Verdict.FAIL,
                     "SGLang before 0.3.1 (finish_reason became an object in PR #1407): the walk refuses the answers; "
                     "upgrade SGLang", label, SOURCE + " §4a", {"kinds": kinds})
    ok = bool(metas) and "null" not in kinds
    return Check(SYSTEM, "finish_reason", expected, found, Verdict.PASS if ok else Verdict.FAIL,
                 "" if ok else "samples without a finish reason: not SGLang's /generate", label, SOURCE + " §4a",
                 {"kinds": kinds})


def _logprob_check(metas: Sequence[dict], label: str | None) -> Check:
    """With ``return_logprob`` each sample has ``meta_info.output_token_logprobs`` = ``[[logprob, token_id, text],
    …]`` from 0.2.6 (``decode_token_logprobs`` in 0.1.15-0.2.5; sglang_facts §4b). The policy scores a candidate by
    their sum and reads a missing key as 0."""
    expected = "meta_info.output_token_logprobs in every sample (SGLang >= 0.2.6)"
    present = sum(isinstance(m.get("output_token_logprobs"), list) for m in metas)
    other = sorted({k for m in metas for k in LOGPROB_KEYS[1:] if k in m})
    found = f"in {present}/{len(metas)} samples" + (f"; other key(s): {', '.join(other)}" if other else "")
    if metas and present == len(metas):
        return Check(SYSTEM, "logprobs", expected, found, Verdict.PASS, "", label, SOURCE + " §4b")
    todo = ("every candidate would score 0 (no ranking by the model): "
            + ("this is SGLang before 0.2.6 (decode_token_logprobs): upgrade it" if other else
               "the server or a proxy drops return_logprob: call SGLang's native /generate directly"))
    return Check(SYSTEM, "logprobs", expected, found, Verdict.FAIL, todo, label, SOURCE + " §4b")


def _generation_checks(metas: Sequence[dict], stats: dict[str, Any], config: SGLangConfig,
                       latencies: dict[int, list[float]], label: str | None) -> list[Check]:
    """Tokens, truncation and usable tactics as the policy counts them (PolicyStats; a ``length`` sample is dropped,
    policy/base.py candidates_from_completions), and latency per ``n``."""
    rows = []
    completions = stats["completions"] or 0
    tokens = [m.get("completion_tokens") for m in metas if isinstance(m.get("completion_tokens"), int)]
    rows.append(Check(SYSTEM, "tokens per candidate", "a few tens (a tactic averages 44 characters)",
                      f"{stats['completion_tokens_per_sample']} per sample, {stats['completion_tokens_per_candidate']} "
                      f"per candidate, max {max(tokens, default=0)} of max_new_tokens {config.max_new_tokens}",
                      Verdict.PASS, "", label, "README capacity plan; policy.sglang.PolicyStats",
                      {k: stats[k] for k in ("completion_tokens_per_sample", "completion_tokens_per_candidate")}))
    truncated = stats["truncated"] / completions if completions else None
    verdict = (Verdict.UNKNOWN if truncated is None else Verdict.FAIL if truncated == 1 else
               Verdict.WARN if truncated > 0.1 else Verdict.PASS)
    rows.append(Check(SYSTEM, "cut by max_new_tokens", "few samples end with finish_reason length",
                      f"{stats['truncated']}/{completions} samples" if completions else "no samples", verdict,
                      "" if verdict is Verdict.PASS else
                      f"cut samples are dropped: use the deepseek-prefill prompt format (it stops at the closing fence "
                      f"or a blank line; {{prompt_format}}) or raise max_new_tokens ({config.max_new_tokens})",
                      label, SOURCE + " §4a; policy/base.py", {"share": truncated}))
    usable = completions - stats["truncated"] - stats["no_tactic"] - stats["forbidden"]
    share = usable / completions if completions else None
    verdict = (Verdict.UNKNOWN if share is None else Verdict.FAIL if share == 0 else
               Verdict.WARN if share < 0.5 else Verdict.PASS)
    rows.append(Check(SYSTEM, "samples yielding a tactic", "most samples hold an extractable tactic",
                      f"{usable}/{completions} ({stats['no_tactic']} without a tactic, {stats['forbidden']} sorry/admit)"
                      if completions else "no samples", verdict,
                      "" if verdict is Verdict.PASS else
                      f"the model does not answer the {config.prompt.name!r} prompt with tactics: try another "
                      "{prompt_format} (deepseek-prefill, deepseek-chat or a template file)",
                      label, "policy/extract.py; SPEC §2 (prompt)", {"share": share}))
    for n, values in sorted(latencies.items()):
        p50, p95 = quantile(values, 0.5), quantile(values, 0.95)
        rows.append(Check(SYSTEM, f"latency n={n}", "reference 7B on one GPU: 1.5-3.3 s p50 for n=8 (SPEC §2)",
                          f"p50 {p50:.2f} s, p95 {p95:.2f} s over {len(values)} calls" if values else "no answered call",
                          Verdict.PASS if values else Verdict.FAIL, "" if values else "no call was answered",
                          label, "SPEC §2 reference latencies", {"p50_s": p50, "p95_s": p95, "calls": len(values)}))
    failed = stats["failed_requests"]
    if failed:
        rows.append(Check(SYSTEM, "/generate failures", "none", f"{failed} call(s) failed (5xx, timeout, abort)",
                          Verdict.WARN, "mining retries once and then skips the step: read SGLang's log", label, SOURCE
                          + " §6"))
    return rows


async def _timed(call: Awaitable[Any]) -> float:
    t0 = time.monotonic()
    await call
    return time.monotonic() - t0


@dataclass(frozen=True, slots=True)
class RampLevel:
    calls: int
    p50_s: float
    p95_s: float
    ratio: float  # p50 / p50 of one call alone


def find_knee(levels: Sequence[RampLevel], factor: float, min_rise_s: float = 0.0) -> RampLevel | None:
    """The first level whose p50 latency exceeds ``factor`` times one call's alone, and by at least ``min_rise_s``
    (below that the rise is the client's own overhead, not the server queueing). p50 climbs once more than half
    the calls wait, so the server's capacity lies between the previous level and this one."""
    if not levels:
        return None
    alone = levels[0].p50_s
    return next((lv for lv in levels if lv.ratio > factor and lv.p50_s - alone >= min_rise_s), None)


async def _ramp(policy: SGLangPolicy, states: Sequence[str], opts: DoctorOptions) -> tuple[list[RampLevel], str]:
    """Concurrent calls of ``ramp_n`` samples at each level in turn, until latency climbs, the levels end or the
    next level would pass the budget."""
    levels: list[RampLevel] = []
    t0 = time.monotonic()
    for level in opts.ramp_levels:
        if levels and time.monotonic() - t0 + 2 * levels[-1].p50_s > opts.ramp_budget_s:
            return levels, f"stopped before {level} calls: the {opts.ramp_budget_s:g} s budget"
        times = await asyncio.gather(*(_timed(policy.candidates(states[i % len(states)], opts.ramp_n, theorem="doctor"))
                                       for i in range(level)))
        p50, p95 = quantile(times, 0.5), quantile(times, 0.95)
        assert p50 is not None and p95 is not None
        levels.append(RampLevel(level, p50, p95, p50 / levels[0].p50_s if levels else 1.0))
        if find_knee(levels, opts.knee_factor, opts.knee_min_rise_s):
            return levels, "latency climbed"
    return levels, "levels exhausted"


def _ramp_check(levels: Sequence[RampLevel], why: str, opts: DoctorOptions, label: str | None) -> Check:
    """SGLang runs at most ``--max-running-requests`` sequences and queues the rest; a call of n samples is n
    sequences (io_struct.py _normalize_batch_inputs; policy/capacity.py). The README's capacity plan for 100,000
    theorems a day needs 8-18 calls of n=8 in flight."""
    expected = (f"p50 of concurrent n={opts.ramp_n} calls within x{opts.knee_factor:g} of one call alone up to "
                f"{PLAN_CALLS_IN_FLIGHT} calls (README capacity plan: 8-18 in flight)")
    source = "sglang scheduler (policy/capacity.py); README capacity plan"
    knee = find_knee(levels, opts.knee_factor, opts.knee_min_rise_s)
    flat = max((lv.calls for lv in levels if knee is None or lv.calls < knee.calls), default=0)
    details = {"levels": [dataclasses.asdict(lv) for lv in levels], "knee_calls": knee.calls if knee else None,
               "flat_up_to_calls": flat, "factor": opts.knee_factor}
    if knee is None:
        found = f"flat up to {flat} concurrent calls ({why})"
    else:
        found = (f"climbs at {knee.calls} concurrent calls (p50 {knee.p50_s:.2f} s = x{knee.ratio:.1f} of "
                 f"{levels[0].p50_s:.2f} s alone); flat up to {flat}")
    if knee is not None and flat < PLAN_CALLS_IN_FLIGHT:
        return Check(SYSTEM, "concurrency before latency climbs", expected, found, Verdict.WARN,
                     f"this server queues beyond ~{flat} calls of n={opts.ramp_n}: mining more theorems at once only "
                     "waits; for the README's plan raise SGLang's --max-running-requests (memory allowing) or add "
                     "servers", label, source, details)
    return Check(SYSTEM, "concurrency before latency climbs", expected, found, Verdict.PASS, "", label, source, details)


async def check_sglang(config: SGLangConfig, states: Sequence[str], opts: DoctorOptions = DoctorOptions()
                       ) -> SGLangFindings:
    """Every SGLang check, in order: /health while loading, server info, /generate with the prover prompt on the
    traces' states (n = each of ``opts.sample_counts``), then the concurrency ramp."""
    if not states:
        raise ValueError("check_sglang needs at least one state to prompt")
    most = max(max(opts.ramp_levels), max(opts.sample_counts))
    recorder = RecordingTransport(httpx.AsyncHTTPTransport(limits=pool_limits(most)))
    # No retries: a failure is what the doctor is here to see (mining retries once).
    cfg = dataclasses.replace(config, startup_wait_s=opts.server_wait_s, startup_poll_s=opts.poll_s,
                              startup_report_s=max(10.0, opts.poll_s), retries=0, max_concurrency=most,
                              request_timeout_s=opts.request_timeout_s)
    policy = SGLangPolicy(cfg, transport=recorder, notify=log.info)
    checks: list[Check] = []
    tables: list[DetailTable] = []
    try:
        t0 = time.monotonic()
        try:
            await policy.start()
            ready = True
        except PolicyUnavailable:
            ready = False
        waited = time.monotonic() - t0
        model = policy.model_info or {}
        label = STAND_IN if model.get("standin") else None
        checks.append(_health_check(recorder.log, ready, waited, policy.url, label))
        if not ready:
            checks.append(Check(SYSTEM, "/generate", "answers", "not checked: the server is not ready", Verdict.SKIP))
            return SGLangFindings(tuple(checks), ())
        async with httpx.AsyncClient(base_url=policy.url, timeout=30.0) as client:
            path, info = await _server_info(client)
        label = label or (STAND_IN if info.get("standin") else None)
        checks.append(server_info_check(path, info, label))
        checks.append(Check(SYSTEM, "model", "the prover model (DeepSeek-Prover: hidden size 4096)",
                            str(model.get("model_path", "unknown (no /get_model_info)")), Verdict.PASS, "", label,
                            SOURCE + " §2"))
        latencies: dict[int, list[float]] = {}
        first = len(recorder.log)
        refused: PolicyError | None = None
        for n in opts.sample_counts:
            for i in range(opts.calls_per_n):
                try:
                    latencies.setdefault(n, []).append(await _timed(
                        policy.candidates(states[i % len(states)], n, theorem="doctor")))
                except (PolicyProtocolError, PolicyRequestRejected) as e:
                    refused = e
                    break
            if refused:
                break
        if isinstance(refused, PolicyRequestRejected):
            checks.append(Check(SYSTEM, "/generate with the prover prompt", "HTTP 200", str(refused), Verdict.FAIL,
                                "the server refused the prompt: longer than its context, or not SGLang's native "
                                "/generate (point {server_url} at SGLang itself, not /v1)", label, SOURCE + " §6, §8"))
            return SGLangFindings(tuple(checks), ())
        metas = _samples(recorder.log[first:])
        checks.append(_finish_reason_check(metas, refused, label))
        checks.append(_logprob_check(metas, label))  # read from the raw answers, also when the policy refused them
        if refused is not None:
            return SGLangFindings(tuple(checks), ())
        checks += _generation_checks(metas, policy.stats.as_dict(), cfg, latencies, label)
        levels, why = await _ramp(policy, states, opts)
        checks.append(_ramp_check(levels, why, opts, label))
        tables.append(DetailTable(SYSTEM, f"concurrency ramp (n={opts.ramp_n} per call)",
                                  ("concurrent calls", "p50 s", "p95 s", "x alone"),
                                  tuple((lv.calls, f"{lv.p50_s:.2f}", f"{lv.p95_s:.2f}", f"{lv.ratio:.2f}")
                                        for lv in levels), label))
    finally:
        await policy.aclose()
    return SGLangFindings(tuple(checks), tuple(tables))
