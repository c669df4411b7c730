"""States/s of the model-backed encoder in process vs through ``serve-encoder``, at several request sizes.

Distinct ground-truth states of the traces (real LeanDojo sample when present, else the bundled sample)
are wrapped in the DeepSeek-Prover template and encoded, for each of ``--batch-sizes``,

1. in process: ``HFEncoder.encode_sync`` on chunks of that many states (the baseline), then
2. through the server (``workbench serve-encoder`` in its own process on a loopback port): a
   ``SidecarEncoder`` sending requests of that size with ``--concurrency`` in flight, so the
   server's micro-batcher can join them.

    .venv/bin/python bench/encode_hf.py                      # CPU: the bundled MiniLM, fp32
    .venv/bin/python bench/encode_hf.py --gpu                # GPU: DeepSeek-Prover-V2-7B, bf16, cuda
    .venv/bin/python bench/encode_hf.py --gpu --model PATH --load-in-4bit
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.encode import SHARED, trace_states  # noqa: E402
from workbench.encode import DEEPSEEK_PROVER_TEMPLATE, SidecarEncoder, state_text  # noqa: E402
from workbench.encode.hf import DEFAULT_MAX_LENGTH, HFEncoder, HFEncoderConfig  # noqa: E402
from workbench.traces import bundled_sample_path  # noqa: E402

log = logging.getLogger("bench.encode_hf")
GPU_MODEL = "deepseek-ai/DeepSeek-Prover-V2-7B"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server_process(args: argparse.Namespace) -> Iterator[str]:
    """``workbench serve-encoder`` in its own process (in ours it would share the GIL); yields its URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "workbench.cli", "serve-encoder", "--model", args.model, "--port", str(port),
           "--device", args.device, "--dtype", args.dtype, "--max-batch", str(args.max_batch),
           "--token-budget", str(args.token_budget), "--linger-ms", str(args.linger_ms),
           "--max-length", str(args.max_length)] + (["--load-in-4bit"] if args.load_in_4bit else [])
    log_file = open(args.server_log, "w", encoding="utf-8")  # one line per batch: kept for inspection
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}))
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + args.start_timeout_s
        while True:  # the model loads before the port answers
            if proc.poll() is not None:
                raise RuntimeError(f"serve-encoder exited with {proc.returncode}; see {args.server_log}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"serve-encoder not ready after {args.start_timeout_s} s")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log_file.close()


def load_encoder(args: argparse.Namespace) -> HFEncoder:
    encoder = HFEncoder(HFEncoderConfig(model=args.model, device=args.device, dtype=args.dtype,
                                        load_in_4bit=args.load_in_4bit, max_length=args.max_length,
                                        max_batch=args.max_batch, token_budget=args.token_budget))
    encoder.load()
    encoder.encode_sync(["warm-up"] * 8)  # allocator, kernels
    return encoder


def in_process(encoder: HFEncoder, texts: list[str], batch_size: int) -> float:
    """Seconds to encode ``texts`` in calls of ``batch_size``."""
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        encoder.encode_sync(texts[i:i + batch_size])
    return time.perf_counter() - t0


async def served(texts: list[str], url: str, dim: int, batch_size: int, args: argparse.Namespace) -> float:
    async with SidecarEncoder(url, hidden_size=dim, batch_size=batch_size,
                              concurrency=args.concurrency, timeout_s=600) as client:
        await client.encode(texts[:8])  # warm-up and /info
        t0 = time.perf_counter()
        await client.encode(texts)
        return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help=f"GPU mode: {GPU_MODEL}, bf16, cuda (override with the flags)")
    parser.add_argument("--model", default=None, help="default: minilm (CPU) or the 7B prover (--gpu)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--load-in-4bit", action="store_true")
    parser.add_argument("--states", type=int, default=None, help="distinct states (default 128 CPU, 4096 GPU)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--concurrency", type=int, default=4, help="client requests in flight to the server")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--token-budget", type=int, default=32768)
    parser.add_argument("--max-length", type=int, default=DEFAULT_MAX_LENGTH)
    parser.add_argument("--linger-ms", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads in both processes (default: torch's choice; 1 on a shared machine)")
    parser.add_argument("--traces", default=None)
    parser.add_argument("--start-timeout-s", type=float, default=900.0)
    parser.add_argument("--server-log", default="/tmp/encode_hf_server.log")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    args.model = args.model or (GPU_MODEL if args.gpu else "minilm")
    args.device = args.device or ("cuda" if args.gpu else "cpu")
    args.dtype = args.dtype or ("bf16" if args.gpu else "fp32")
    args.states = args.states or (4096 if args.gpu else 128)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    source = Path(args.traces) if args.traces else (SHARED if (SHARED / "random").is_dir() else bundled_sample_path())
    states = list(dict.fromkeys(trace_states(source)))[: args.states]
    texts = [state_text(s, DEEPSEEK_PROVER_TEMPLATE) for s in states]
    encoder = load_encoder(args)
    rows = []
    # Both run on the same machine at the same time of day: for each size, in process then served, so a
    # shared machine's load drifts over both alike (a GPU needs room for two copies, or --load-in-4bit).
    with server_process(args) as url:
        for b in args.batch_sizes:
            local = in_process(encoder, texts, b)
            wall = asyncio.run(served(texts, url, encoder.identity.dim, b, args))
            row = {"batch_size": b, "in_process_states_per_s": round(len(texts) / local, 1),
                   "served_states_per_s": round(len(texts) / wall, 1), "served_vs_in_process": round(local / wall, 2)}
            rows.append(row)
            log.info("%s", row)
        info = httpx.get(f"{url}/info", timeout=10).json()
    stats = encoder.stats
    result = {"source": str(source), "states": len(texts), "model": args.model, "device": args.device,
              "dtype": args.dtype, "threads": args.threads, "concurrency": args.concurrency,
              "identity": encoder.identity.to_dict(), "mean_tokens": round(stats.tokens / max(stats.texts, 1), 1),
              "in_process_padding": round(stats.padded_tokens / max(stats.tokens, 1), 2),
              "server_stats": info["stats"], "server_encoder_stats": info["encoder_stats"], "runs": rows}
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
