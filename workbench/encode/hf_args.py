"""Command-line options of the model-backed encoder, shared by ``encode`` and ``serve-encoder``."""

from __future__ import annotations

import argparse

from workbench.encode.hf import DEFAULT_MAX_LENGTH, HFEncoderConfig


def add_hf_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model encoder (hf:MODEL / serve-encoder)")
    g.add_argument("--revision", default=None, help="hub branch, tag or commit of the model")
    g.add_argument("--device", default="auto", help="auto (GPU when available), cpu, cuda, cuda:N")
    g.add_argument("--dtype", choices=["auto", "bf16", "fp16", "fp32"], default="auto",
                   help="compute dtype (auto: bf16 on a GPU, fp32 on the CPU); vectors are always float32")
    g.add_argument("--load-in-4bit", action="store_true",
                   help="NF4 weights via bitsandbytes (pip install 'workbench[gpu]'): a 7B model in ~5 GB")
    g.add_argument("--max-length", type=int, default=DEFAULT_MAX_LENGTH,
                   help=f"tokens kept per state, longer ones are truncated and counted (default {DEFAULT_MAX_LENGTH})")
    g.add_argument("--max-batch", type=int, default=64, help="texts per forward (default 64)")
    g.add_argument("--token-budget", type=int, default=32768,
                   help="padded tokens per forward (texts x longest text; default 32768)")
    g.add_argument("--padding-side", choices=["auto", "left", "right"], default="auto",
                   help="auto: right for encoders, the tokenizer's side for decoder-only models")
    g.add_argument("--trust-remote-code", action="store_true", help="allow the model's own Python code")


def hf_config(args: argparse.Namespace, model: str) -> HFEncoderConfig:
    return HFEncoderConfig(model=model, revision=args.revision, device=args.device, dtype=args.dtype,
                           load_in_4bit=args.load_in_4bit, max_length=args.max_length, max_batch=args.max_batch,
                           token_budget=args.token_budget, padding_side=args.padding_side,
                           trust_remote_code=args.trust_remote_code)
