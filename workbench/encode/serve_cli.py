"""``workbench serve-encoder --model MODEL --port 30001``: one model serving /encode to every process.

    workbench serve-encoder --model deepseek-ai/DeepSeek-Prover-V2-7B --port 30001 --dtype bf16
    workbench encode --encode-url http://127.0.0.1:30001 --trajectories runs/mine-01 --cache cache/prover
"""

from __future__ import annotations

import argparse
import logging

from workbench.encode.hf_args import add_hf_arguments, hf_config
from workbench.encode.text import DEFAULT_TEMPLATE

logger = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True,
                        help="hub name or local folder of the model (minilm = the bundled all-MiniLM-L6-v2)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=30001)
    parser.add_argument("--linger-ms", type=float, default=5.0,
                        help="how long a request waits for others to share its batch (default 5 ms)")
    parser.add_argument("--max-waiting", type=int, default=65536, help="queued texts before answering 503")
    parser.add_argument("--max-body-mb", type=float, default=16.0,
                        help="largest /encode request body in MiB; larger ones get 413 unread (default 16)")
    parser.add_argument("--max-text-chars", type=int, default=100_000,
                        help="longest text in characters; a request with a longer one gets 413 (default 100000)")
    add_hf_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.linger_ms < 0 or args.max_waiting < 1 or not 0 <= args.port <= 65535:
        raise ValueError("--linger-ms must be >= 0, --max-waiting >= 1 and --port in 0..65535")
    if not (0 < args.max_body_mb < float("inf")) or args.max_text_chars < 1:
        raise ValueError("--max-body-mb must be a positive number and --max-text-chars >= 1")
    from workbench.encode.hf import HFEncoder
    from workbench.encode.server import BatcherConfig, RequestLimits, create_app, listening_socket, uvicorn_server

    encoder = HFEncoder(hf_config(args, args.model), template=DEFAULT_TEMPLATE)  # template unused: texts come ready
    batching = BatcherConfig(linger_s=args.linger_ms / 1000, token_budget=args.token_budget,
                             max_batch=args.max_batch, max_waiting=args.max_waiting)
    sock = listening_socket(args.host, args.port)
    logger.info("serve-encoder: %s on http://%s:%d (loading the model first)", args.model, args.host, args.port)
    limits = RequestLimits(max_body_bytes=int(args.max_body_mb * 1024 * 1024), max_text_chars=args.max_text_chars)
    uvicorn_server(create_app(encoder, batching, limits), log_level="info").run(sockets=[sock])
    return 0
