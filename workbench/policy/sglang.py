"""SGLang policy: candidates from SGLang's native ``/generate`` (SPEC §2).

One long-lived ``httpx.AsyncClient``; one request per step with ``sampling_params.n`` (or, in
``single`` mode, n concurrent one-sample requests for servers that mishandle ``n``; ``auto`` starts
with ``n`` and switches for good the first time a server answers the wrong number of samples).
The prompt and its stop strings come from a :class:`PromptFormat` (default ``deepseek-prefill``).

Start-up: ``/health`` answers 503 (or refuses connections) while SGLang loads; ``start`` waits for a
200 up to ``startup_wait_s`` with a countdown, then raises ``PolicyUnavailable`` naming the URL and
the last answer.

Per call: a sample whose ``meta_info.finish_reason.type`` is ``length`` keeps only its complete leading
tactics (the one the cut fell in is dropped; counted as ``truncated`` / ``truncated_kept``); an ``abort``
sample makes the call a failure (``aborts``). A 5xx, timeout, refused connection or abort is retried
with backoff; when every attempt failed the call raises ``GenerationFailed`` (``failed_steps``): the step
has no answer, which the walk must not mistake for a step without candidates (the theorem stays
unfinished and ``--resume`` mines it again). A 4xx (bad request, prompt longer than the context) is not
retried: the call raises ``PolicyRequestRejected`` with the server's message, counted by status. Every
attempt feeds a circuit breaker (``policy/breaker.py``): failures in a row, or a failure rate over the
last attempts, trip it, and ``CircuitBreakerOpen`` (a ``PolicyUnavailable``: the run stops) is raised
from then on. Malformed JSON raises ``PolicyProtocolError`` naming the endpoint (and counts as a failed
attempt for the breaker).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import httpx

from workbench.http_pool import pool_limits
from workbench.policy.base import Candidate, Completion, candidates_from_completions
from workbench.policy.breaker import BreakerConfig, CircuitBreaker
from workbench.policy.errors import (
    CircuitBreakerOpen,
    GenerationFailed,
    PolicyProtocolError,
    PolicyRequestRejected,
    PolicyUnavailable,
)
from workbench.policy.prompt import PromptFormat

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SGLangConfig:
    url: str = "http://127.0.0.1:30000"
    temperature: float = 1.0
    top_p: float = 0.95
    max_new_tokens: int = 128
    stop: tuple[str, ...] | None = None  # None = the prompt format's stop strings
    n_mode: str = "auto"               # "n" | "single" | "auto"
    request_timeout_s: float = 60.0    # per request (a whole n-sample generation)
    connect_timeout_s: float = 5.0
    max_concurrency: int = 16          # requests in flight across all steps
    retries: int = 1                   # extra attempts for 5xx / timeout / refused connection / abort
    backoff_s: float = 0.5
    breaker: BreakerConfig = field(default_factory=BreakerConfig)  # when failed attempts stop the run
    startup_wait_s: float = 600.0      # wait this long for /health 200 while the server loads
    startup_poll_s: float = 2.0        # between /health checks
    startup_report_s: float = 10.0     # between countdown lines
    prompt: PromptFormat = field(default_factory=PromptFormat)

    def __post_init__(self) -> None:
        if self.n_mode not in ("n", "single", "auto"):
            raise ValueError(f"n_mode must be n, single or auto, got {self.n_mode!r}")
        if self.startup_wait_s < 0:
            raise ValueError(f"startup_wait_s must be >= 0, got {self.startup_wait_s}")

    @property
    def stop_strings(self) -> tuple[str, ...]:
        return tuple(self.prompt.stop if self.stop is None else self.stop)


@dataclass(slots=True)
class PolicyStats:
    steps: int = 0
    requests: int = 0
    retries: int = 0
    timeouts: int = 0
    http_5xx: int = 0
    http_4xx: dict[str, int] = field(default_factory=dict)   # by status code
    connection_errors: int = 0
    aborts: int = 0                # calls answered with a finish_reason "abort" sample
    protocol_errors: int = 0       # answers that are not SGLang's JSON
    failed_requests: int = 0       # gave up after retries
    failed_steps: int = 0          # steps whose generation failed (GenerationFailed: the theorem is unfinished)
    answered_requests: int = 0     # /generate calls that returned samples
    completion_tokens: int = 0     # generated tokens over those calls (meta_info.completion_tokens)
    max_completion_tokens_per_request: int = 0
    completions: int = 0
    truncated: int = 0             # finish_reason "length": the tactic the cut fell in is never sent to Lean
    truncated_kept: int = 0        # ... of which the complete leading tactics became a candidate
    no_tactic: int = 0
    forbidden: int = 0
    duplicates: int = 0
    candidates: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The counters plus the derived rates the run summary shows."""
        def per(num: int, den: int) -> float | None:
            return round(num / den, 2) if den else None
        return asdict(self) | {
            "completion_tokens_per_request": per(self.completion_tokens, self.answered_requests),
            "completion_tokens_per_sample": per(self.completion_tokens, self.completions),
            "completion_tokens_per_candidate": per(self.completion_tokens, self.candidates),
        }


class _Transient(Exception):
    """A failure worth one retry (5xx, timeout, refused connection, abort)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def _finish_reason(meta: dict, *, endpoint: str, i: int) -> tuple[str | None, str | None]:
    """(type, abort message) of ``meta_info.finish_reason`` (an object, or null while unfinished)."""
    fr = meta.get("finish_reason")
    if fr is None:
        return None, None
    if not isinstance(fr, dict) or not isinstance(fr.get("type"), str):
        raise PolicyProtocolError(f"{endpoint}: sample {i} meta_info.finish_reason is not an object with a string "
                                  f"'type' (got {str(fr)[:120]!r})")
    return fr["type"], (str(fr.get("message")) if fr["type"] == "abort" else None)


def parse_generate_response(obj: Any, *, endpoint: str) -> list[Completion]:
    """Completions of one /generate answer (an object for one sample, a list for several)."""
    items = obj if isinstance(obj, list) else [obj]
    out: list[Completion] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise PolicyProtocolError(f"{endpoint}: sample {i} has no string 'text' (got {str(item)[:120]!r})")
        meta = item.get("meta_info") or {}
        if not isinstance(meta, dict):
            raise PolicyProtocolError(f"{endpoint}: sample {i} meta_info is {type(meta).__name__}, expected an object")
        token_lps = meta.get("output_token_logprobs")
        n_tokens = meta.get("completion_tokens")
        if token_lps is None:
            logprob = 0.0
        else:
            try:
                values = [float(t[0]) for t in token_lps if t and t[0] is not None]
            except (TypeError, ValueError, IndexError) as e:
                raise PolicyProtocolError(
                    f"{endpoint}: sample {i} output_token_logprobs is not a list of [logprob, id, text]: {e}") from e
            logprob = float(sum(values))
            n_tokens = n_tokens if n_tokens is not None else len(token_lps)
        kind, _ = _finish_reason(meta, endpoint=endpoint, i=i)
        out.append(Completion(text=item["text"], logprob=logprob,
                              num_tokens=int(n_tokens) if n_tokens is not None else None, finish_reason=kind))
    return out


def _abort_message(obj: Any) -> str | None:
    """The first abort message of an answer whose samples include a finish_reason ``abort``."""
    for i, item in enumerate(obj if isinstance(obj, list) else [obj]):
        kind, message = _finish_reason(item.get("meta_info") or {}, endpoint="", i=i)
        if kind == "abort":
            return message or "aborted"
    return None


def _server_message(response: httpx.Response) -> str:
    """SGLang's error text: ``{"error": {"message"}}`` (ValueError -> 400) or ``{"message"}`` (HTTPException)."""
    try:
        obj = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text[:300].strip() or "(empty body)"
    if isinstance(obj, dict):
        err = obj.get("error")
        if isinstance(err, dict) and err.get("message") is not None:
            return str(err["message"])[:1000]
        for key in ("message", "detail", "error"):
            if isinstance(obj.get(key), str):
                return obj[key][:1000]
    return response.text[:300]


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # the start-up countdown: visible in a terminal and a notebook


class SGLangPolicy:
    """``async with SGLangPolicy(SGLangConfig(url=...)) as policy: await policy.candidates(state, 8, theorem=...)``."""

    def __init__(self, config: SGLangConfig, *, transport: httpx.AsyncBaseTransport | None = None,
                 notify: Callable[[str], None] = _stderr_line) -> None:
        self.config = config
        self.url = config.url.rstrip("/")
        self.stats = PolicyStats()
        self.model_info: dict[str, Any] | None = None
        self._notify = notify
        self._mode = "n" if config.n_mode == "auto" else config.n_mode
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self.breaker = CircuitBreaker(config.breaker, name=f"SGLang at {self.url}")
        self._client = httpx.AsyncClient(
            base_url=self.url,
            timeout=httpx.Timeout(config.request_timeout_s, connect=config.connect_timeout_s),
            limits=pool_limits(config.max_concurrency),
            transport=transport)

    async def __aenter__(self) -> "SGLangPolicy":
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Wait for ``/health`` 200 and record ``/get_model_info`` for provenance."""
        await self.wait_until_ready()
        try:
            info = await self._client.get("/get_model_info")
        except httpx.HTTPError as e:
            raise PolicyUnavailable(f"{self.url}/get_model_info: {type(e).__name__}: {e}") from e
        if info.status_code == 200:
            self.model_info = self._json(info, "/get_model_info")
        else:
            logger.warning("%s/get_model_info answered HTTP %d; provenance lacks the model", self.url, info.status_code)
        logger.info("SGLang policy at %s: %s", self.url, self.model_info)

    async def wait_until_ready(self) -> None:
        """Poll ``/health`` until 200; SGLang refuses connections while it loads weights, then answers 503
        until its warm-up generation is done. Raises ``PolicyUnavailable`` after ``startup_wait_s``."""
        c = self.config
        deadline = time.monotonic() + c.startup_wait_s
        next_report = time.monotonic()
        while True:
            try:
                health = await self._client.get("/health")
                if health.status_code == 200:
                    return
                body = health.text.strip()
                last = f"HTTP {health.status_code}" + (f" {body[:200]!r}" if body else "")
            except httpx.HTTPError as e:
                last = f"no answer ({type(e).__name__}: {e})" if str(e) else f"no answer ({type(e).__name__})"
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                raise PolicyUnavailable(
                    f"SGLang at {self.url} was not ready after {c.startup_wait_s:g}s: /health last answered {last}")
            if now >= next_report:
                self._notify(f"waiting for SGLang at {self.url} to be ready (/health: {last}); "
                             f"giving up in {left:.0f}s")
                next_report = now + c.startup_report_s
            await asyncio.sleep(min(c.startup_poll_s, left))

    async def aclose(self) -> None:
        await self._client.aclose()

    def provenance(self) -> dict:
        c = self.config
        return {"policy": "sglang", "url": self.url, "model_info": self.model_info,
                "sampling_params": self._sampling(1) | {"n": None}, "n_mode": c.n_mode, "effective_n_mode": self._mode,
                "prompt_format": c.prompt.provenance(), "stats": self.stats.as_dict()}

    def _sampling(self, n: int) -> dict[str, Any]:
        c = self.config
        params: dict[str, Any] = {"n": n, "temperature": c.temperature, "top_p": c.top_p,
                                  "max_new_tokens": c.max_new_tokens}
        if c.stop_strings:
            params["stop"] = list(c.stop_strings)
        return params

    async def candidates(self, state_pp: str, n: int, *, theorem: str = "") -> list[Candidate]:
        """Up to ``n`` distinct candidates for ``state_pp`` (fewer after dedup/filtering).

        Raises ``GenerationFailed`` when the call failed after its retries (never ``[]`` for a failure),
        ``PolicyRequestRejected`` for a 4xx, ``CircuitBreakerOpen`` once the breaker has tripped."""
        if self.breaker.tripped:
            raise CircuitBreakerOpen(self.breaker.tripped)
        self.stats.steps += 1
        prompt = self.config.prompt.build(state_pp)
        try:
            completions = await self._completions(prompt, n, theorem)
        except GenerationFailed:
            self.stats.failed_steps += 1
            raise
        cands, fs = candidates_from_completions(completions, score_kind="logprob",
                                                answer_prefix=self.config.prompt.answer_prefix)
        s = self.stats
        s.completions += fs.completions
        s.truncated += fs.truncated
        s.truncated_kept += fs.truncated_kept
        s.no_tactic += fs.no_tactic
        s.forbidden += fs.forbidden
        s.duplicates += fs.duplicates
        s.candidates += fs.kept
        return cands

    async def _completions(self, prompt: str, n: int, theorem: str) -> list[Completion]:
        if self._mode == "n":
            got = await self._generate(prompt, n, theorem)
            if len(got) == n:
                return got
            if self.config.n_mode != "auto":
                raise PolicyProtocolError(f"{self.url}/generate: asked for n={n} samples, got {len(got)}")
            logger.warning("%s/generate answered %d samples for n=%d: switching to n single requests",
                           self.url, len(got), n)
            self._mode = "single"
        results = await asyncio.gather(*(self._generate(prompt, 1, theorem) for _ in range(n)),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:  # every request has finished: raise the gravest (a tripped breaker first). A step
            # missing some of its samples is a failed step, not a smaller answer.
            raise next((e for e in errors if isinstance(e, PolicyUnavailable)), errors[0])
        return [c for r in results for c in r]  # type: ignore[union-attr]  (no exceptions left)

    async def _generate(self, prompt: str, n: int, theorem: str) -> list[Completion]:
        """One /generate call with retries; raises ``GenerationFailed`` when every attempt failed (counted)."""
        payload = {"text": prompt, "sampling_params": self._sampling(n), "return_logprob": True}
        endpoint = f"{self.url}/generate"
        attempts = self.config.retries + 1
        last: _Transient | None = None
        for attempt in range(attempts):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(self.config.backoff_s * 2 ** (attempt - 1))
            try:
                async with self._semaphore:
                    return await self._attempt(payload, endpoint)
            except _Transient as e:
                last = e
                logger.warning("%s (%s) attempt %d/%d: %s", endpoint, theorem or "-", attempt + 1, attempts, e)
        self.stats.failed_requests += 1
        assert last is not None
        raise GenerationFailed(f"{endpoint}: generation failed after {attempts} attempts; last: {last}",
                               kind=last.kind) from last

    async def _attempt(self, payload: dict[str, Any], endpoint: str) -> list[Completion]:
        """One HTTP attempt, classified for the breaker: answered (samples or a 4xx) or failed."""
        if self.breaker.tripped:
            raise CircuitBreakerOpen(self.breaker.tripped)
        try:
            obj = await self._post("/generate", payload)
            completions = parse_generate_response(obj, endpoint=endpoint)
            aborted = _abort_message(obj)
        except _Transient as e:
            self._failed(e.kind)
            raise
        except PolicyProtocolError:
            self.stats.protocol_errors += 1
            self._failed("malformed answer")
            raise
        except PolicyRequestRejected:
            self.breaker.note(True)  # the server is up and answered (about this one request)
            raise
        if aborted is not None:
            self.stats.aborts += 1
            self._failed("abort")
            raise _Transient("abort", aborted)
        self.breaker.note(True)
        self._count_tokens(completions)
        return completions

    def _failed(self, kind: str) -> None:
        tripped = self.breaker.note(False, kind)
        if tripped:
            logger.error("%s", tripped)
            raise CircuitBreakerOpen(tripped)

    def _count_tokens(self, completions: list[Completion]) -> None:
        tokens = sum(c.num_tokens or 0 for c in completions)
        s = self.stats
        s.answered_requests += 1
        s.completion_tokens += tokens
        s.max_completion_tokens_per_request = max(s.max_completion_tokens_per_request, tokens)

    async def _post(self, path: str, payload: dict[str, Any]) -> Any:
        """The one HTTP chokepoint: an answer's JSON, or the fault classified (``_Transient``, 4xx, protocol)."""
        self.stats.requests += 1
        try:
            response = await self._client.post(path, json=payload)
        except httpx.ConnectError as e:
            self.stats.connection_errors += 1
            raise _Transient("connection refused", str(e)) from e
        except httpx.TimeoutException as e:
            self.stats.timeouts += 1
            raise _Transient("timeout", f"no answer within {self.config.request_timeout_s}s") from e
        except httpx.TransportError as e:
            self.stats.connection_errors += 1
            raise _Transient("transport error", f"{type(e).__name__}: {e}") from e
        if response.status_code >= 500:
            self.stats.http_5xx += 1
            raise _Transient(f"HTTP {response.status_code}", _server_message(response))
        if response.status_code != 200:
            status = response.status_code
            key = str(status)
            self.stats.http_4xx[key] = self.stats.http_4xx.get(key, 0) + 1
            message = _server_message(response)
            raise PolicyRequestRejected(f"{self.url}{path}: HTTP {status}: {message}", status=status,
                                        server_message=message)
        return self._json(response, path)

    def _json(self, response: httpx.Response, path: str) -> Any:
        try:
            return response.json()
        except json.JSONDecodeError as e:
            raise PolicyProtocolError(f"{self.url}{path}: malformed JSON answer ({e}): {response.text[:120]!r}") from e
