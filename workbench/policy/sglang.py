"""SGLang policy: candidates from SGLang's native ``/generate`` (SPEC §2).

One long-lived ``httpx.AsyncClient``; one request per step with ``sampling_params.n`` (or, in
``single`` mode, n concurrent one-sample requests for servers that mishandle ``n``; ``auto`` starts
with ``n`` and switches for good the first time a server answers the wrong number of samples).
Faults: a 5xx, timeout or refused connection is retried once with backoff, then that step's
candidates are skipped (``[]``, counted); a refused connection that persists for
``breaker_window_s`` trips a circuit breaker that raises ``PolicyUnavailable`` instead of hammering a
dead server; malformed JSON raises ``PolicyProtocolError`` naming the endpoint.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from workbench.policy.base import Candidate, Completion, candidates_from_completions
from workbench.policy.prompt import PromptFormat

logger = logging.getLogger(__name__)


class PolicyError(RuntimeError):
    """The policy server is broken (infrastructure, not a bad step)."""


class PolicyProtocolError(PolicyError):
    """The server answered something that is not SGLang's documented JSON."""


class PolicyUnavailable(PolicyError):
    """The server cannot be reached (health check failed, or the circuit breaker tripped)."""


@dataclass(frozen=True, slots=True)
class SGLangConfig:
    url: str = "http://127.0.0.1:30000"
    temperature: float = 1.0
    top_p: float = 0.95
    max_new_tokens: int = 128
    stop: tuple[str, ...] = ()
    n_mode: str = "auto"               # "n" | "single" | "auto"
    request_timeout_s: float = 60.0    # per request (a whole n-sample generation)
    connect_timeout_s: float = 5.0
    max_concurrency: int = 16          # requests in flight across all steps
    retries: int = 1                   # extra attempts for 5xx / timeout / refused connection
    backoff_s: float = 0.5
    breaker_window_s: float = 30.0     # refused connections for this long (and ...)
    breaker_min_failures: int = 5      # ... at least this many in a row) trip the breaker
    prompt: PromptFormat = field(default_factory=PromptFormat)

    def __post_init__(self) -> None:
        if self.n_mode not in ("n", "single", "auto"):
            raise ValueError(f"n_mode must be n, single or auto, got {self.n_mode!r}")


@dataclass(slots=True)
class PolicyStats:
    steps: int = 0
    requests: int = 0
    retries: int = 0
    timeouts: int = 0
    http_5xx: int = 0
    connection_errors: int = 0
    failed_requests: int = 0       # gave up after retries
    skipped_steps: int = 0         # steps that returned [] because of failures
    completions: int = 0
    no_tactic: int = 0
    forbidden: int = 0
    duplicates: int = 0
    candidates: int = 0


class _Transient(Exception):
    """A failure worth one retry (5xx, timeout, refused connection)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


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
        if token_lps is None:
            logprob, n_tokens = 0.0, meta.get("completion_tokens")
        else:
            try:
                values = [float(t[0]) for t in token_lps if t and t[0] is not None]
            except (TypeError, ValueError, IndexError) as e:
                raise PolicyProtocolError(
                    f"{endpoint}: sample {i} output_token_logprobs is not a list of [logprob, id, text]: {e}") from e
            logprob, n_tokens = float(sum(values)), len(token_lps)
        out.append(Completion(text=item["text"], logprob=logprob,
                              num_tokens=int(n_tokens) if n_tokens is not None else None))
    return out


class SGLangPolicy:
    """``async with SGLangPolicy(SGLangConfig(url=...)) as policy: await policy.candidates(state, 8, theorem=...)``."""

    def __init__(self, config: SGLangConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.url = config.url.rstrip("/")
        self.stats = PolicyStats()
        self.model_info: dict[str, Any] | None = None
        self._mode = "n" if config.n_mode == "auto" else config.n_mode
        self._semaphore = asyncio.Semaphore(config.max_concurrency)
        self._refused_since: float | None = None
        self._refused_in_a_row = 0
        self._tripped: str | None = None
        self._client = httpx.AsyncClient(
            base_url=self.url,
            timeout=httpx.Timeout(config.request_timeout_s, connect=config.connect_timeout_s),
            limits=httpx.Limits(max_connections=config.max_concurrency,
                                max_keepalive_connections=config.max_concurrency),
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
        """Check ``/health`` and record ``/get_model_info`` for provenance."""
        try:
            health = await self._client.get("/health")
        except httpx.HTTPError as e:
            raise PolicyUnavailable(f"{self.url}/health: SGLang server not reachable ({type(e).__name__}: {e})") from e
        if health.status_code != 200:
            raise PolicyUnavailable(f"{self.url}/health answered HTTP {health.status_code}")
        try:
            info = await self._client.get("/get_model_info")
        except httpx.HTTPError as e:
            raise PolicyUnavailable(f"{self.url}/get_model_info: {type(e).__name__}: {e}") from e
        if info.status_code == 200:
            self.model_info = self._json(info, "/get_model_info")
        else:
            logger.warning("%s/get_model_info answered HTTP %d; provenance lacks the model", self.url, info.status_code)
        logger.info("SGLang policy at %s: %s", self.url, self.model_info)

    async def aclose(self) -> None:
        await self._client.aclose()

    def provenance(self) -> dict:
        c = self.config
        return {"policy": "sglang", "url": self.url, "model_info": self.model_info,
                "sampling_params": self._sampling(1) | {"n": None}, "n_mode": c.n_mode, "effective_n_mode": self._mode,
                "prompt_template": c.prompt.template, "chat_format": c.prompt.chat,
                "stats": asdict(self.stats)}

    def _sampling(self, n: int) -> dict[str, Any]:
        c = self.config
        params: dict[str, Any] = {"n": n, "temperature": c.temperature, "top_p": c.top_p,
                                  "max_new_tokens": c.max_new_tokens}
        if c.stop:
            params["stop"] = list(c.stop)
        return params

    async def candidates(self, state_pp: str, n: int, *, theorem: str = "") -> list[Candidate]:
        """Up to ``n`` distinct candidates for ``state_pp`` (fewer after dedup/filtering; [] if the step failed)."""
        if self._tripped:
            raise PolicyUnavailable(self._tripped)
        self.stats.steps += 1
        prompt = self.config.prompt.build(state_pp)
        completions = await self._completions(prompt, n, theorem)
        if completions is None:
            self.stats.skipped_steps += 1
            return []
        cands, fs = candidates_from_completions(completions, score_kind="logprob")
        s = self.stats
        s.completions += fs.completions
        s.no_tactic += fs.no_tactic
        s.forbidden += fs.forbidden
        s.duplicates += fs.duplicates
        s.candidates += fs.kept
        return cands

    async def _completions(self, prompt: str, n: int, theorem: str) -> list[Completion] | None:
        if self._mode == "n":
            got = await self._generate(prompt, n, theorem)
            if got is None or len(got) == n:
                return got
            if self.config.n_mode != "auto":
                raise PolicyProtocolError(f"{self.url}/generate: asked for n={n} samples, got {len(got)}")
            logger.warning("%s/generate answered %d samples for n=%d: switching to n single requests",
                           self.url, len(got), n)
            self._mode = "single"
        results = await asyncio.gather(*(self._generate(prompt, 1, theorem) for _ in range(n)))
        ok = [c for r in results if r is not None for c in r]
        return ok if ok or n == 0 else None

    async def _generate(self, prompt: str, n: int, theorem: str) -> list[Completion] | None:
        """One /generate call with retries; None when it failed (counted), never raises for transient faults."""
        payload = {"text": prompt, "sampling_params": self._sampling(n), "return_logprob": True}
        for attempt in range(self.config.retries + 1):
            if attempt:
                self.stats.retries += 1
                await asyncio.sleep(self.config.backoff_s * 2 ** (attempt - 1))
            try:
                async with self._semaphore:
                    obj = await self._post("/generate", payload)
                return parse_generate_response(obj, endpoint=f"{self.url}/generate")
            except _Transient as e:
                logger.warning("%s/generate (%s) attempt %d/%d: %s", self.url, theorem or "-", attempt + 1,
                               self.config.retries + 1, e)
        self.stats.failed_requests += 1
        return None

    async def _post(self, path: str, payload: dict[str, Any]) -> Any:
        """The one HTTP chokepoint: classify faults, feed the circuit breaker."""
        if self._tripped:
            raise PolicyUnavailable(self._tripped)
        self.stats.requests += 1
        try:
            response = await self._client.post(path, json=payload)
        except httpx.ConnectError as e:
            self.stats.connection_errors += 1
            self._note_refused()
            raise _Transient("connection refused", str(e)) from e
        except httpx.TimeoutException as e:
            self.stats.timeouts += 1
            raise _Transient("timeout", f"no answer within {self.config.request_timeout_s}s") from e
        except httpx.TransportError as e:
            self.stats.connection_errors += 1
            raise _Transient("transport error", f"{type(e).__name__}: {e}") from e
        self._refused_since, self._refused_in_a_row = None, 0
        if response.status_code >= 500:
            self.stats.http_5xx += 1
            raise _Transient(f"HTTP {response.status_code}", response.text[:200])
        if response.status_code != 200:
            raise PolicyError(f"{self.url}{path}: HTTP {response.status_code}: {response.text[:200]}")
        return self._json(response, path)

    def _json(self, response: httpx.Response, path: str) -> Any:
        try:
            return response.json()
        except json.JSONDecodeError as e:
            raise PolicyProtocolError(f"{self.url}{path}: malformed JSON answer ({e}): {response.text[:120]!r}") from e

    def _note_refused(self) -> None:
        now = time.monotonic()
        if self._refused_since is None:
            self._refused_since = now
        self._refused_in_a_row += 1
        span = now - self._refused_since
        if span >= self.config.breaker_window_s and self._refused_in_a_row >= self.config.breaker_min_failures:
            self._tripped = (f"{self.url}: SGLang refused {self._refused_in_a_row} connections in a row over "
                             f"{span:.0f}s; circuit breaker open. Is the server running?")
            logger.error("%s", self._tripped)
            raise PolicyUnavailable(self._tripped)
