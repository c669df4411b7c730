"""Benchmark: energy-head training steps/s on CPU at batch 256, k 7, d_encoder 4096 (11M parameters).

Measures, in the same process and on the same model:
  sampler      ContrastiveSampler.sample(256) alone (tiers, backfill; numpy)
  fwd+bwd      forward + InfoNCE/depth loss + backward on pre-built tensors [256 * 8, 4096]
  fwd+bwd+opt  the same plus gradient clipping and the AdamW step
  full step    what train() does per step: sample -> gather rows -> fwd -> bwd -> clip -> AdamW -> LR
so the data path is shown (or not) to be the bottleneck.

    .venv/bin/python bench/train_ebm.py [--steps 5] [--batch-size 256] [--k 7] [--dim 4096] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from workbench.ebm.data import ContrastiveSampler, SamplerConfig, attach_embeddings
from workbench.ebm.losses import contrastive_loss
from workbench.ebm.model import EnergyHead, EnergyHeadConfig
from workbench.ebm.synthetic import make_synthetic
from workbench.ebm.train import TrainConfig, as_tensor, batch_loss, make_optimizer


def timed_rounds(fns: dict, rounds: int) -> dict[str, float]:
    """Median seconds per call; the candidates take turns each round so that load from other
    processes on a shared machine hits them alike."""
    for fn in fns.values():
        fn()  # warm-up (allocator, AdamW state)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(v)) for name, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5, help="timed rounds (median reported)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--k", type=int, default=7)
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    records, table = make_synthetic(n_theorems=300, steps=5, siblings=4, dim=args.dim, seed=0)
    joined, _ = attach_embeddings(records, table)
    sampler = ContrastiveSampler(joined, SamplerConfig(k_negatives=args.k, seed=0))
    emb = as_tensor(table.matrix)
    cfg = TrainConfig(batch_size=args.batch_size)
    model = EnergyHead(EnergyHeadConfig(d_encoder=args.dim)).train()
    opt = make_optimizer(model, cfg)
    b, k = args.batch_size, args.k
    x = torch.randn(b * (1 + k), args.dim)  # pre-built: no sampling, no gather
    depth = torch.randint(-1, 10, (b,))

    def sample_only() -> None:
        sampler.sample(b)

    def fwd_bwd() -> None:
        e = model(x).view(b, 1 + k)
        parts = contrastive_loss(e[:, 0], e[:, 1:], model.temperature, depth)
        opt.zero_grad(set_to_none=True)
        parts.total.backward()

    def fwd_bwd_opt() -> None:
        fwd_bwd()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()

    def full_step() -> None:
        batch = sampler.sample(b)
        parts, _, _ = batch_loss(model, emb, batch, cfg)
        opt.zero_grad(set_to_none=True)
        parts.total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()

    results = timed_rounds(
        {"sampler_s": sample_only, "fwd_bwd_s": fwd_bwd, "fwd_bwd_opt_s": fwd_bwd_opt, "full_step_s": full_step},
        args.steps,
    )
    out = {
        "batch_size": b, "k": k, "d_encoder": args.dim, "parameters": model.num_parameters(),
        "rows_per_step": b * (1 + k), "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(), "rounds": args.steps, "statistic": "median",
        **{key: round(v, 4) for key, v in results.items()},
        "full_steps_per_s": round(1 / results["full_step_s"], 3),
        "prebuilt_fwd_bwd_opt_steps_per_s": round(1 / results["fwd_bwd_opt_s"], 3),
        "data_path_share": round(1 - results["fwd_bwd_opt_s"] / results["full_step_s"], 3),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
