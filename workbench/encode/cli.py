"""`workbench encode`: embed the distinct states of trajectory files into an embedding cache."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

from workbench.aio import run_sync
from workbench.encode.cache import EncodeReport, encode_states, export_embeddings
from workbench.encode.hf_args import add_hf_arguments, hf_config
from workbench.encode.identity import Encoder
from workbench.errors import EXIT_ENVIRONMENT, EXIT_OK
from workbench.encode.text import DEEPSEEK_PROVER_TEMPLATE, PLAIN_TEMPLATE

logger = logging.getLogger(__name__)

TEMPLATES = {"deepseek": DEEPSEEK_PROVER_TEMPLATE, "plain": PLAIN_TEMPLATE}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trajectories", nargs="+", required=True, type=Path, metavar="PATH",
                        help="trajectory Parquet files or folders of parts (column state_pp is encoded)")
    parser.add_argument("--cache", required=True, type=Path, metavar="PATH",
                        help="embedding cache folder (created; only states not already in it are encoded)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--encode-url", metavar="URL", help="encoding sidecar base URL (POST /encode)")
    source.add_argument("--encoder", type=_encoder_spec, default=None, metavar="minilm|hf:MODEL",
                        help="in-process encoder (default when no --encode-url): minilm = all-MiniLM-L6-v2 on CPU "
                             "(sentence-transformers); hf:MODEL = a transformers model's mean-pooled last layer "
                             "(hub name or folder; hf:minilm = the bundled MiniLM)")
    parser.add_argument("--hidden-size", type=int, default=4096, help="sidecar embedding width (default 4096)")
    parser.add_argument("--encoder-model", default=None,
                        help="model name recorded for the sidecar (default: sidecar:<url>)")
    parser.add_argument("--template", choices=sorted(TEMPLATES), default="deepseek",
                        help="state text template (default deepseek: the DeepSeek-Prover prompt form)")
    parser.add_argument("--batch-size", type=int, default=64, help="states per encoder call (default 64)")
    parser.add_argument("--concurrency", type=int, default=2, help="encoder calls in flight (default 2)")
    parser.add_argument("--checkpoint-every", type=int, default=2048,
                        help="write a cache part every N new embeddings (default 2048)")
    parser.add_argument("--export", type=Path, default=None, metavar="FILE",
                        help="also write the whole cache as one Parquet file (SPEC §3 layout)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_hf_arguments(parser)


def _encoder_spec(text: str) -> str:
    if text == "minilm" or (text.startswith("hf:") and len(text) > 3):
        return text
    raise argparse.ArgumentTypeError(f"expected minilm or hf:MODEL, got {text!r}")


def encoder_from_args(args: argparse.Namespace) -> Encoder:
    from workbench.encode.factory import make_encoder

    spec = args.encode_url or (args.encoder if args.encoder and args.encoder.startswith("hf:") else "local")
    hf = dataclasses.asdict(hf_config(args, spec[3:])) if spec.startswith("hf:") else {}
    hf.pop("model", None)
    return make_encoder(spec, template=TEMPLATES[args.template], hidden_size=args.hidden_size,
                 model=args.encoder_model, batch_size=args.batch_size, concurrency=args.concurrency, **hf)


def load_states(paths: list[Path]) -> list[str]:
    from workbench.trajectory import read_trajectories

    frame = read_trajectories([str(p) for p in paths])
    if "state_pp" not in frame.columns:
        raise ValueError(f"{paths}: trajectories have no state_pp column (columns: {list(frame.columns)})")
    return frame["state_pp"].astype(str).tolist()


async def _run(args: argparse.Namespace) -> EncodeReport:
    states = load_states(args.trajectories)
    encoder = encoder_from_args(args)
    try:
        return await encode_states(states, encoder, args.cache, batch_size=args.batch_size,
                                   concurrency=args.concurrency, checkpoint_every=args.checkpoint_every,
                                   progress=not args.no_progress)
    finally:
        aclose = getattr(encoder, "aclose", None)
        if aclose is not None:
            await aclose()


def run(args: argparse.Namespace) -> int:
    """Exit statuses as every command's (``workbench.errors``): a bad flag or file 2, an encoder that failed 3."""
    if args.export is not None and args.export.is_dir():  # checked before encoding, not after an hour of it
        raise ValueError(f"--export {args.export} is a folder; give a file name (e.g. {args.export / 'embeddings.parquet'})")
    report = run_sync(_run(args))
    summary = {
        "requested": report.requested, "unique": report.unique, "hits": report.hits, "misses": report.misses,
        "encoded": report.encoded, "failures": report.failures, "parts_written": report.parts_written,
        "seconds": round(report.seconds, 2), "dedup_ratio": round(report.dedup_ratio, 3),
    }
    if args.export is not None:
        summary["exported"] = str(export_embeddings(args.cache, args.export))
    print(json.dumps(summary, indent=2))  # the CLI's result on stdout
    if report.failures:
        logger.error("%d states could not be encoded (invalid vectors); the rest are cached and a re-run encodes "
                     "only the missing ones", report.failures)
        return EXIT_ENVIRONMENT
    return EXIT_OK
