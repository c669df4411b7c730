"""A stand-in SGLang server: a real HTTP server on 127.0.0.1 speaking SGLang's native JSON (SPEC §2).

For tests, demos and benchmarks without a GPU. ``POST /generate`` answers one object for one
sample and a list for ``n`` > 1 or a list of prompts, with ``meta_info.output_token_logprobs``;
``GET /health`` and ``GET /get_model_info`` (which says ``"standin": true``) are served too.
Completions come from a *completer*: scripted (``ScriptedCompleter``) or retrieval-backed
(``RetrievalCompleter``: tactics of the most similar training states). Latency and faults are
configurable, and so is a finite capacity (``capacity.py``: SGLang's running-request cap and waiting
queue; ``--max-running-requests``). ``python -m workbench.policy.standin_server --port 30000 [--traces PATH]`` runs it.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from workbench.policy.capacity import GenerationCapacity, QueueFull
from workbench.policy.prompt import state_from_prompt
from workbench.standin_http import NOT_FOUND, LoopbackJsonServer

logger = logging.getLogger(__name__)

STANDIN_MODEL = "workbench-standin-sglang"

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
        texts = [f"```lean4\n{c.raw_text}\n```" for c in cands] or ["```lean4\nskip\n```"]
        return [texts[i % len(texts)] for i in range(n)]


@dataclass
class GenerateFaults:
    latency_s: float = 0.0        # added to every /generate
    fail_next: int = 0            # answer HTTP 500 to the next N /generate requests
    malformed_next: int = 0       # answer non-JSON to the next N requests
    hang_next: int = 0            # sleep hang_s before answering the next N requests (client timeouts)
    hang_s: float = 2.0
    ignore_n: bool = False        # answer one sample whatever n says (a server that mishandles n)
    health_status: int = 200


@dataclass
class GenerateCounters:
    generate_requests: int = 0
    samples: int = 0
    errors_injected: int = 0
    max_in_flight: int = 0


def _fake_logprobs(text: str, sample: int) -> list[list[Any]]:
    """Deterministic per-token log-probabilities: earlier samples score higher."""
    n_tokens = max(1, (len(text) + 3) // 4)
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


@dataclass
class StandinSGLang(LoopbackJsonServer):
    """Context manager: ``with StandinSGLang(ScriptedCompleter([...])) as server: server.url``."""

    completer: Completer = field(default_factory=lambda: ScriptedCompleter(["skip"]))
    host: str = "127.0.0.1"
    port: int = 0
    faults: GenerateFaults = field(default_factory=GenerateFaults)
    counters: GenerateCounters = field(default_factory=GenerateCounters)
    requests: list[dict] = field(default_factory=list)   # payloads received, for assertions
    capacity: GenerationCapacity | None = None  # finite server: running cap + queue (None: unbounded)

    name = "stand-in SGLang"

    def __post_init__(self) -> None:
        LoopbackJsonServer.__init__(self, self.host, self.port)
        self._lock = threading.Lock()
        self._in_flight = 0

    def model_info(self) -> dict:
        return {"model_path": STANDIN_MODEL, "tokenizer_path": None, "is_generation": True, "standin": True}

    def handle_get(self, path: str) -> tuple[int, bytes]:
        if path == "/health":
            return self.faults.health_status, b""
        if path == "/get_model_info":
            return 200, json.dumps(self.model_info()).encode()
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
                return 500, b'{"error": "injected failure"}'
            if self._take("malformed_next"):
                return 200, b"{not json"
            if not isinstance(payload, dict) or "text" not in payload:
                return 400, b'{"error": "expected {\\"text\\": ...}"}'
            params = payload.get("sampling_params") or {}
            n = int(params.get("n", 1))
            prompts = payload["text"] if isinstance(payload["text"], list) else [payload["text"]]
            items = []
            for p_idx, prompt in enumerate(prompts):
                k = 1 if self.faults.ignore_n else n
                for i, text in enumerate(self.completer(state_from_prompt(prompt), prompt, k)):
                    meta: dict[str, Any] = {"id": f"standin-{p_idx}-{i}", "finish_reason": {"type": "stop"},
                                            "prompt_tokens": len(prompt) // 4, "completion_tokens": 0}
                    if payload.get("return_logprob"):
                        meta["output_token_logprobs"] = _fake_logprobs(text, i)
                        meta["completion_tokens"] = len(meta["output_token_logprobs"])
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
    StandinSGLang(completer=completer, port=args.port, faults=GenerateFaults(latency_s=args.latency_s),
                  capacity=capacity).serve_until_interrupted()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
