"""A stand-in SGLang server: a real HTTP server on 127.0.0.1 speaking SGLang's native JSON (SPEC §2).

For tests, demos and benchmarks without a GPU. ``POST /generate`` answers one object for one
sample and a list for ``n`` > 1 or a list of prompts, with ``meta_info.output_token_logprobs``;
``GET /health`` and ``GET /get_model_info`` (which says ``"standin": true``) are served too.
Completions come from a *completer*: scripted (``ScriptedCompleter``) or retrieval-backed
(``RetrievalCompleter``: tactics of the most similar training states). A completer's text is what
the model would generate; :func:`finish_sample` then ends it as SGLang does (length, end of
sentence, stop strings, trimmed), with a stand-in tokenisation of 4 characters per token. Latency,
a loading phase (``/health`` 503), aborts and faults are configurable, and so is a finite capacity
(``capacity.py``: SGLang's running-request cap and waiting queue; ``--max-running-requests``);
prompts longer than ``context_len`` are refused with SGLang's 400 messages. ``server_version`` picks the
API era it answers in (server-info endpoints, ``finish_reason`` as a string before 0.3.1, the logprob key
before 0.2.6; /work/notes/sglang_facts.md §1, §4), so `workbench doctor` can be tested against old servers.
``python -m workbench.policy.standin_server --port 30000 [--traces PATH]`` runs it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from packaging.version import Version

from workbench.policy.capacity import GenerationCapacity, QueueFull
from workbench.policy.prompt import state_from_prompt
from workbench.standin_http import NOT_FOUND, LoopbackJsonServer

logger = logging.getLogger(__name__)

STANDIN_MODEL = "workbench-standin-sglang"
STANDIN_EOS_TOKEN_ID = 100001   # the stand-in's end-of-sentence token id
CHARS_PER_TOKEN = 4             # the stand-in's tokenisation
STANDIN_CONTEXT_LEN = 32768
# The newest SGLang release whose native API the stand-in copies (sglang_facts.md: read from 0.5.23's wheel).
STANDIN_SGLANG_VERSION = "0.5.23"

# (state recovered from the prompt or None, the prompt, number of samples) -> completion texts
Completer = Callable[[str | None, str, int], list[str]]


class ScriptedCompleter:
    """Completions from a script: ``{state: [text, ...]}``, with ``"*"`` as the fallback entry.

    Sample i of a request gets ``texts[i % len(texts)]`` so a request for more samples than scripted
    repeats them (as sampling does).
    """

    def __init__(self, script: Mapping[str, Sequence[str]] | Sequence[str]) -> None:
        if isinstance(script, Mapping):
            self.script = {k: list(v) for k, v in script.items()}
        else:
            self.script = {"*": list(script)}

    def __call__(self, state: str | None, prompt: str, n: int) -> list[str]:
        texts = self.script.get(state or "", self.script.get("*", ["skip"]))
        return [texts[i % len(texts)] for i in range(n)]


class RetrievalCompleter:
    """Completions from a TF-IDF kNN over training pairs, formatted like a model's fenced answer."""

    def __init__(self, theorems: Sequence) -> None:
        from workbench.policy.knn import TfidfStateIndex
        from workbench.policy.retrieval import pairs_from_theorems

        self.pairs = pairs_from_theorems(theorems)
        self.index = TfidfStateIndex()
        self.index.fit_sync([p.state for p in self.pairs])

    def __call__(self, state: str | None, prompt: str, n: int) -> list[str]:
        from workbench.policy.retrieval import rank_tactics

        idx, sims = self.index.query_sync(state or prompt, max(64, 4 * n))
        cands = rank_tactics(self.pairs, idx, sims, n, exclude_theorem=None)
        tails = [c.raw_text for c in cands] or ["skip"]
        indent = prompt[prompt.rfind("\n") + 1:]
        if "\n" in prompt and indent and not indent.strip():
            # a pre-filled `example := by` turn: continue it, indented like it, then close the fence
            texts = [t.replace("\n", "\n" + indent) + "\n```" for t in tails]
        else:  # a chat turn: a whole fenced answer
            texts = [f"```lean4\n{t}\n```" for t in tails]
        return [texts[i % len(texts)] for i in range(n)]


@dataclass
class GenerateFaults:
    latency_s: float = 0.0        # added to every /generate
    fail_next: int = 0            # answer HTTP fail_status to the next N /generate requests
    fail_status: int = 500        # 500 (scheduler fault) or 503 (queue full / request timeout), SGLang's body
    malformed_next: int = 0       # answer non-JSON to the next N requests
    hang_next: int = 0            # sleep hang_s before answering the next N requests (client timeouts)
    hang_s: float = 2.0
    ignore_n: bool = False        # answer one sample whatever n says (a server that mishandles n)
    health_status: int = 200
    loading_health_checks: int = 0  # answer /health 503 to the next N checks (still loading)
    abort_next: int = 0           # answer the next N /generate with every sample finish_reason "abort"
    omit_logprobs: bool = False   # ignore return_logprob (a proxy or look-alike server): no logprob key at all


@dataclass
class GenerateCounters:
    generate_requests: int = 0
    samples: int = 0
    errors_injected: int = 0
    max_in_flight: int = 0


def _fake_logprobs(n_tokens: int, sample: int) -> list[list[Any]]:
    """Deterministic per-token log-probabilities: earlier samples score higher."""
    lp = -0.05 * (sample + 1)
    return [[lp, 1000 + i, None] for i in range(n_tokens)]


def _sequences(payload: Any, ignore_n: bool) -> int:
    """Scheduled requests one /generate becomes: prompts x n (SGLang expands n; see capacity.py)."""
    if not isinstance(payload, dict):
        return 1
    prompts = len(payload["text"]) if isinstance(payload.get("text"), list) else 1
    try:
        n = 1 if ignore_n else int((payload.get("sampling_params") or {}).get("n", 1))
    except (TypeError, ValueError):
        n = 1
    return max(1, prompts * n)


def num_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def finish_sample(text: str, *, stop: Sequence[str], max_new_tokens: int, no_stop_trim: bool = False
                  ) -> tuple[str, int, dict[str, Any]]:
    """Generate ``text`` token by token and end it as SGLang does: (answer text, completion tokens, finish_reason).

    After each token, in ``Req.check_finished`` order (SGLang schedule_batch.py): ``max_new_tokens``
    reached -> ``{"type": "length", "length": max_new_tokens}``; the end-of-sentence token (after the
    whole text) -> ``{"type": "stop", "matched": <eos id>}``; a stop string anywhere in the text
    decoded so far -> ``{"type": "stop", "matched": stop}``, the text cut before its first occurrence
    (DetokenizerManager.trim_matched_stop) unless ``no_stop_trim``.
    """
    text_tokens = num_tokens(text)
    for k in range(1, text_tokens + 2):   # the last token is the end-of-sentence token
        decoded = text[:k * CHARS_PER_TOKEN]
        if k >= max_new_tokens:
            return decoded, k, {"type": "length", "length": max_new_tokens}
        if k > text_tokens:
            return text, k, {"type": "stop", "matched": STANDIN_EOS_TOKEN_ID}
        for s in stop:
            if s in decoded:
                pos = decoded.find(s)
                return (decoded[:pos + len(s)] if no_stop_trim else decoded[:pos]), k, {"type": "stop", "matched": s}
    raise AssertionError("unreachable")


def legacy_finish_reason(reason: dict[str, Any]) -> str:
    """SGLang 0.1.18-0.3.0's ``str(finished_reason)`` (0.3.0 schedule_batch.py:60-92); an object from 0.3.1
    (sgl-project/sglang PR #1407)."""
    if reason["type"] == "length":
        return f"FINISH_LENGTH: {reason['length']}"
    if reason["type"] == "abort":
        return "FINISH_ABORT"
    kind = "TOKEN" if isinstance(reason.get("matched"), int) else "STR"
    return f"FINISH_MATCHED_{kind}: {reason.get('matched')}"


def context_error(prompt_tokens: int, max_new_tokens: int, context_len: int) -> str | None:
    """SGLang's 400 message for a prompt that does not fit (TokenizerManager._validate_one_request)."""
    if prompt_tokens >= context_len:
        return (f"The input ({prompt_tokens} tokens) is longer than the model's context length "
                f"({context_len} tokens).")
    if max_new_tokens + prompt_tokens > context_len:
        return (f"Requested token count exceeds the model's maximum context length of {context_len} tokens. "
                f"You requested a total of {max_new_tokens + prompt_tokens} tokens: {prompt_tokens} tokens from "
                f"the input messages and {max_new_tokens} tokens for the completion. Please reduce the number "
                f"of tokens in the input messages or the completion to fit within the limit.")
    return None


# SGLang's messages for the scheduler's 5xx aborts (sglang_facts.md §6a/§6c; 0.5.23 scheduler.py:3552-3562)
_SCHEDULER_MESSAGES = {503: "The request queue is full.", 500: "Internal server error (injected by the stand-in)"}


def _scheduler_error(status: int) -> bytes:
    """A scheduler abort with a 5xx status as SGLang renders it: an ErrorResponse (0.4.10.post2+,
    ``entrypoints/openai/protocol.py:106-111``), via its HTTPException handler (0.5.23 ``http_server.py:578-632``)."""
    message = _SCHEDULER_MESSAGES.get(status, f"HTTP {status} (injected by the stand-in)")
    return json.dumps({"object": "error", "message": message, "type": str(status), "param": None,
                       "code": status}).encode()


def _error_body(message: str) -> bytes:
    """SGLang's /generate error body (http_server._create_error_response)."""
    return json.dumps({"error": {"message": message}}).encode()


@dataclass
class StandinSGLang(LoopbackJsonServer):
    """Context manager: ``with StandinSGLang(ScriptedCompleter([...])) as server: server.url``."""

    completer: Completer = field(default_factory=lambda: ScriptedCompleter(["skip"]))
    host: str = "127.0.0.1"
    port: int = 0
    faults: GenerateFaults = field(default_factory=GenerateFaults)
    counters: GenerateCounters = field(default_factory=GenerateCounters)
    context_len: int = STANDIN_CONTEXT_LEN   # in stand-in tokens
    requests: list[dict] = field(default_factory=list)   # payloads received, for assertions
    capacity: GenerationCapacity | None = None  # finite server: running cap + queue (None: unbounded)
    server_version: str = STANDIN_SGLANG_VERSION  # the SGLang release whose API shapes it answers in
    # SGLang runs uvicorn with timeout_keep_alive=5 in every release (0.1.11 server.py:399; 0.5.21
    # environ.py:343 SGLANG_TIMEOUT_KEEP_ALIVE = EnvInt(5)): an idle kept-alive connection is closed after 5 s.
    keep_alive_s: float | None = 5.0
    # uvicorn.run without a backlog argument (0.4.10.post2 http_server.py:964): uvicorn's default of 2048
    # (uvicorn 0.30.6 config.py:211; still 2048 in 0.55.0).
    backlog: int = 2048

    name = "stand-in SGLang"

    def __post_init__(self) -> None:
        LoopbackJsonServer.__init__(self, self.host, self.port)
        self._lock = threading.Lock()
        self._in_flight = 0

    def model_info(self) -> dict:
        return {"model_path": STANDIN_MODEL, "tokenizer_path": None, "is_generation": True, "standin": True}

    def _since(self, version: str) -> bool:
        return Version(self.server_version) >= Version(version)

    def server_info(self) -> dict:
        """``/get_server_info``: server args, scheduler info and (from 0.3.6.post2) ``version`` (sglang_facts §1).
        Before 0.3.6.post1 only ``/get_server_args`` exists, answering the server args alone."""
        cap = self.capacity
        info: dict[str, Any] = {"model_path": STANDIN_MODEL, "context_length": None, "standin": True,
                                "max_running_requests": cap.max_running if cap else None,
                                "max_queued_requests": cap.max_queued if cap else None}
        if self._since("0.3.6.post1"):
            info |= {"status": "ready", "max_total_num_tokens": self.context_len,
                     "max_req_input_len": self.context_len - 6}
        if self._since("0.3.6.post2"):
            info["version"] = self.server_version
        return info

    def handle_get(self, path: str) -> tuple[int, bytes]:
        if path == "/health":
            if self._take("loading_health_checks"):
                return 503, b""   # SGLang: ServerStatus.Starting until the warm-up generation is done
            return self.faults.health_status, b""
        if path == "/get_model_info":
            return 200, json.dumps(self.model_info()).encode()
        if (path == "/get_server_info" and self._since("0.3.6.post1")) or (
                path == "/server_info" and self._since("0.5.6")) or (
                path == "/get_server_args" and not self._since("0.3.6.post1")):
            return 200, json.dumps(self.server_info()).encode()
        if path == "/standin_capacity" and self.capacity is not None:  # stand-in only: queue stats for benchmarks
            return 200, json.dumps(self.capacity.snapshot()).encode()
        return NOT_FOUND

    def handle_post(self, path: str, payload: Any) -> tuple[int, bytes]:
        return self.generate(payload) if path == "/generate" else NOT_FOUND

    def _take(self, name: str) -> bool:
        return self.take_fault(self.faults, name, self.counters)

    def generate(self, payload: Any) -> tuple[int, bytes]:
        with self._lock:
            self.counters.generate_requests += 1
            self.requests.append(payload)
            self._in_flight += 1
            self.counters.max_in_flight = max(self.counters.max_in_flight, self._in_flight)
        try:
            if self.capacity is not None:
                try:
                    self.capacity.run(_sequences(payload, self.faults.ignore_n), self.faults.latency_s)
                except QueueFull as e:
                    return 503, json.dumps({"error": {"message": str(e)}}).encode()
            elif self.faults.latency_s > 0:
                time.sleep(self.faults.latency_s)
            if self._take("hang_next"):
                time.sleep(self.faults.hang_s)
            if self._take("fail_next"):
                return self.faults.fail_status, _scheduler_error(self.faults.fail_status)
            if self._take("malformed_next"):
                return 200, b"{not json"
            if not isinstance(payload, dict) or "text" not in payload:
                return 400, _error_body("Either text, input_ids or input_embeds should be provided.")
            params = payload.get("sampling_params") or {}
            n = int(params.get("n", 1))
            max_new_tokens = int(params.get("max_new_tokens", 128))
            stop = params.get("stop") or []
            stop = [stop] if isinstance(stop, str) else list(stop)
            prompts = payload["text"] if isinstance(payload["text"], list) else [payload["text"]]
            for prompt in prompts:
                error = context_error(num_tokens(prompt), max_new_tokens, self.context_len)
                if error:
                    return 400, _error_body(error)
            aborted = self._take("abort_next")
            items = []
            for p_idx, prompt in enumerate(prompts):
                k = 1 if self.faults.ignore_n else n
                for i, raw in enumerate(self.completer(state_from_prompt(prompt), prompt, k)):
                    if aborted:  # FINISH_ABORT.to_json() with no status code: SGLang answers 200
                        text, tokens = "", 0
                        reason: dict[str, Any] = {"type": "abort", "message": "Aborted", "status_code": None,
                                                  "err_type": None}
                    else:
                        text, tokens, reason = finish_sample(raw, stop=stop, max_new_tokens=max_new_tokens,
                                                             no_stop_trim=bool(params.get("no_stop_trim")))
                    meta: dict[str, Any] = {"id": f"standin-{p_idx}-{i}",
                                            "finish_reason": reason if self._since("0.3.1") else legacy_finish_reason(reason),
                                            "prompt_tokens": num_tokens(prompt), "completion_tokens": tokens,
                                            "cached_tokens": 0}
                    if payload.get("return_logprob") and not self.faults.omit_logprobs:
                        # decode_token_logprobs until 0.2.5, output_token_logprobs from 0.2.6 (sglang_facts §4b)
                        key = "output_token_logprobs" if self._since("0.2.6") else "decode_token_logprobs"
                        meta[key] = _fake_logprobs(tokens, i)
                    items.append({"text": text, "meta_info": meta})
            with self._lock:
                self.counters.samples += len(items)
            single = len(items) == 1 and not isinstance(payload["text"], list)
            return 200, json.dumps(items[0] if single else items).encode()
        finally:
            with self._lock:
                self._in_flight -= 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="stand-in SGLang server (tests and demos only)")
    parser.add_argument("--port", type=int, default=30000)
    parser.add_argument("--latency-s", type=float, default=0.0, help="added to every /generate")
    parser.add_argument("--traces", default=None, help="LeanDojo traces for retrieval-backed completions "
                        "(default: the bundled sample)")
    parser.add_argument("--script", default=None, help='JSON file {"state or *": ["completion", ...]}')
    parser.add_argument("--max-running-requests", type=int, default=None,
                        help="sequences generated at once (a /generate with n samples takes n); the rest wait in a "
                        "FIFO queue, as SGLang's scheduler does (default: unbounded)")
    parser.add_argument("--max-queued-requests", type=int, default=None,
                        help="waiting sequences beyond this are refused with 503 (default: unbounded)")
    parser.add_argument("--loading-health-checks", type=int, default=0, metavar="N",
                        help="answer /health 503 (still loading) to the first N checks")
    parser.add_argument("--server-version", default=STANDIN_SGLANG_VERSION, metavar="X.Y.Z",
                        help="answer in this SGLang release's API shapes (e.g. 0.3.0: finish_reason strings, "
                        "no /get_server_info)")
    parser.add_argument("--omit-logprobs", action="store_true", help="ignore return_logprob (no logprob key)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    if args.script:
        with open(args.script, encoding="utf-8") as f:
            completer: Completer = ScriptedCompleter(json.load(f))
    else:
        from workbench.traces import bundled_sample_path, load_traces

        completer = RetrievalCompleter(load_traces(args.traces or bundled_sample_path()).theorems)
    capacity = (GenerationCapacity(args.max_running_requests, args.max_queued_requests)
                if args.max_running_requests is not None or args.max_queued_requests is not None else None)
    StandinSGLang(completer=completer, port=args.port, capacity=capacity, server_version=args.server_version,
                  faults=GenerateFaults(latency_s=args.latency_s, loading_health_checks=args.loading_health_checks,
                                        omit_logprobs=args.omit_logprobs)
                  ).serve_until_interrupted()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
