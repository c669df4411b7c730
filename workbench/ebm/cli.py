"""``workbench train-ebm``: train the energy head on mined trajectories and/or traces, then evaluate
it on held-out theorems next to baselines.

    workbench train-ebm --trajectories runs/mine-01 --embeddings cache/emb --output runs/ebm-01
    workbench train-ebm --traces ../shared/data/leandojo_mathlib4/random/val.json \\
        --embeddings cache/minilm --encode local --output runs/ebm-gt      # no Lean needed

With ``--encode local`` (MiniLM, offline) or ``--encode http://host:port`` (the encoding sidecar),
states missing from the embedding cache are encoded into it first; without ``--encode`` they are
reported and left out.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from workbench.ebm.data import SamplerConfig
from workbench.ebm.model import EnergyHeadConfig
from workbench.ebm.train import METRICS, TrainConfig

log = logging.getLogger(__name__)


def _ratios(text: str) -> tuple[float, float, float]:
    parts = [float(x) for x in text.split(",")]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"--ratios needs three comma-separated numbers (hard,medium,easy), got {text!r}")
    return parts[0], parts[1], parts[2]


def configure(parser: argparse.ArgumentParser) -> None:
    d_model, d_train, d_sampler = EnergyHeadConfig(), TrainConfig(), SamplerConfig()
    io = parser.add_argument_group("inputs and outputs")
    io.add_argument("--trajectories", nargs="+", type=Path, default=[], metavar="PATH", help="trajectory Parquet files or folders")
    io.add_argument("--traces", type=Path, help="LeanDojo traces: ground-truth positives with remaining depth")
    io.add_argument("--num-theorems", type=int, help="sample this many theorems from --traces")
    io.add_argument("--embeddings", type=Path, required=True, help="embedding cache folder (or exported Parquet file)")
    io.add_argument("--encode", metavar="local|URL", help="encode missing states first: 'local' (MiniLM) or the sidecar URL")
    io.add_argument("--template", choices=["deepseek", "plain"], default="deepseek", help="state-text template when encoding")
    io.add_argument("--output", type=Path, required=True, help="run folder: best/, last/, history.jsonl, summary.json")
    io.add_argument("--resume", action="store_true", help="continue from OUTPUT/last")
    m = parser.add_argument_group("model")
    m.add_argument("--hidden", type=int, nargs=3, default=[d_model.d_hidden1, d_model.d_hidden2, d_model.d_hidden3], metavar=("H1", "H2", "H3"))
    m.add_argument("--dropout", type=float, default=d_model.dropout)
    m.add_argument("--spectral-norm", action="store_true", help="spectral normalisation on every linear layer")
    m.add_argument("--no-standardize-inputs", action="store_true", help="feed raw embeddings (no training-split mean/std)")
    s = parser.add_argument_group("sampler")
    s.add_argument("--k-negatives", type=int, default=d_sampler.k_negatives)
    s.add_argument("--ratios", type=_ratios, default=(d_sampler.hard_ratio, d_sampler.medium_ratio, d_sampler.easy_ratio), help="hard,medium,easy shares of k (default 0.5,0.3,0.2)")
    s.add_argument("--easy-source", choices=["auto", "negatives", "any"], default=d_sampler.easy_source)
    s.add_argument("--progress-negatives", action="store_true",
                   help="earlier states of the same proof are medium negatives (the within-proof signal of traces)")
    s.add_argument("--val-fraction", type=float, default=0.2, help="share of theorems held out")
    t = parser.add_argument_group("training")
    t.add_argument("--steps", type=int, default=d_train.steps)
    t.add_argument("--batch-size", type=int, default=d_train.batch_size)
    t.add_argument("--lr", type=float, default=d_train.lr)
    t.add_argument("--weight-decay", type=float, default=d_train.weight_decay)
    t.add_argument("--warmup-steps", type=int, default=d_train.warmup_steps)
    t.add_argument("--grad-clip", type=float, default=d_train.grad_clip)
    t.add_argument("--loss", choices=["infonce", "margin"], default=d_train.loss)
    t.add_argument("--depth-weight", type=float, default=d_train.depth_weight, help="remaining-depth regression weight (0 = off)")
    t.add_argument("--margin", type=float, default=d_train.margin)
    t.add_argument("--eval-every", type=int, default=d_train.eval_every)
    t.add_argument("--patience", type=int, default=d_train.patience, help="evaluations without improvement before stopping (0 = never)")
    t.add_argument("--metric", choices=sorted(METRICS), default=d_train.metric)
    t.add_argument("--seed", type=int, default=d_train.seed)
    t.add_argument("--device", default=d_train.device, help="auto (GPU when available), cpu, cuda, cuda:1, ...")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from workbench.ebm.pipeline import ensure_embeddings, load_records, make_encoder, prepare, run_experiment

    records = load_records(args.trajectories, args.traces, num_theorems=args.num_theorems, seed=args.seed)
    encoder = None
    if args.encode:
        from workbench.encode import DEEPSEEK_PROVER_TEMPLATE, PLAIN_TEMPLATE

        template = PLAIN_TEMPLATE if args.template == "plain" else DEEPSEEK_PROVER_TEMPLATE
        encoder = make_encoder(args.encode, template=template)
    table = ensure_embeddings(records["state_pp"].tolist(), args.embeddings, encoder, progress=not args.no_progress)
    hard, medium, easy = args.ratios
    sampler = SamplerConfig(k_negatives=args.k_negatives, hard_ratio=hard, medium_ratio=medium, easy_ratio=easy,
                            easy_source=args.easy_source, progress_negatives=args.progress_negatives, seed=args.seed)
    data = prepare(records, table, sampler, val_fraction=args.val_fraction, seed=args.seed)
    if data.simulated:
        log.warning("SIMULATED TRAINING DATA: these trajectories come from the Lean simulator, not from Lean")
    model_cfg = EnergyHeadConfig(d_encoder=table.matrix.shape[1], d_hidden1=args.hidden[0], d_hidden2=args.hidden[1],
                                 d_hidden3=args.hidden[2], dropout=args.dropout, spectral_norm=args.spectral_norm,
                                 standardize_inputs=not args.no_standardize_inputs)
    train_cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                            warmup_steps=args.warmup_steps, grad_clip=args.grad_clip, loss=args.loss,
                            depth_weight=args.depth_weight, margin=args.margin, eval_every=args.eval_every,
                            patience=args.patience, metric=args.metric, seed=args.seed, device=args.device)
    exp = run_experiment(data, model_cfg, train_cfg, args.output, resume=args.resume, progress=not args.no_progress)
    summary = exp.summary()
    lines = [f"best {train_cfg.metric} {exp.result.best_metric} at step {exp.result.best_step}; checkpoints in {args.output}"]
    if exp.simulated:
        lines.insert(0, "*** SIMULATED TRAINING DATA ***")
    log.info("\n".join(lines))
    print(json.dumps({k: summary[k] for k in ("best_step", "best_metric", "simulated")}, default=str))
    return 0
