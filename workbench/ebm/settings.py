"""``EbmSettings``: every knob of an energy-head run, with the one set of defaults that both
``workbench train-ebm`` and notebook 04 use (the CLI flags are generated from the fields).

Two defaults depend on the encoder and are resolved once the embedding width is known:
  hidden    None -> the seed architecture 2048/1024/512 for wide encoders (the 4096-d sidecar);
            OFFLINE_HIDDEN for narrow ones (the 384-d local MiniLM): as accurate as wider or
            narrower heads within the intervals, and cheap on CPU (README, "Energy head on real traces");
  template  None -> "plain" for the local MiniLM, "deepseek" for the sidecar (the prover's prompt).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.ebm.data import SamplerConfig
from workbench.ebm.features import FEATURE_NAMES, check_feature_names
from workbench.ebm.losses import LOSS_KINDS
from workbench.ebm.model import EnergyHeadConfig
from workbench.ebm.train import METRICS, TrainConfig

SEED_HIDDEN = (2048, 1024, 512)
OFFLINE_HIDDEN = (256, 128, 64)
WIDE_ENCODER = 1024  # embedding widths from here on get the seed architecture
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EbmSettings:
    # -- inputs and outputs ------------------------------------------------------------------------
    output: str = "runs/ebm"  # run folder: best/, last/, history.jsonl, summary.json, eval_*.json
    traces: str | None = None  # LeanDojo traces: ground-truth states with remaining depth
    trajectories: tuple[str, ...] = ()  # mined trajectory Parquet files/folders
    num_theorems: int | None = None  # sample this many theorems from `traces`
    embeddings: str | None = None  # embedding cache folder; None = <output>/embeddings
    encode: str | None = "local"  # encode missing states: "local" (MiniLM), "hf:MODEL", the sidecar URL, or None
    template: str | None = None  # state-text template: "plain" / "deepseek"; None = by encoder (see module doc)
    eval_traces: tuple[str, ...] = ()  # after training, evaluate on these LeanDojo files -> eval_<stem>.json
    # -- model ---------------------------------------------------------------------------------------
    hidden: tuple[int, int, int] | None = None  # None = by encoder width (see module doc)
    dropout: float = 0.1
    spectral_norm: bool = False
    standardize_inputs: bool = True
    features: tuple[str, ...] = FEATURE_NAMES  # structural features appended to the embedding; () = none
    # -- sampler -------------------------------------------------------------------------------------
    k_negatives: int = 7
    ratios: tuple[float, float, float] = (0.5, 0.3, 0.2)  # hard (siblings), medium (same theorem), easy
    easy_source: str = "auto"  # auto = other theorems' negatives if mined, else none (never their proof states)
    progress_negatives: bool = True  # earlier states of the same proof are negatives
    balance_theorems: bool = False  # every theorem equally likely to supply a positive
    val_fraction: float = 0.1  # share of theorems held out for early stopping and the run's own evaluation
    # -- training ------------------------------------------------------------------------------------
    loss: str = "ranknet"
    depth_weight: float = 0.0  # remaining-depth regression (auxiliary; 0 = off)
    margin: float = 1.0
    steps: int = 600
    batch_size: int = 128
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_steps: int | None = None  # None = steps // 20
    grad_clip: float = 1.0
    eval_every: int = 50
    patience: int = 5
    metric: str = "val_pairwise_acc"
    seed: int = 0
    device: str = "auto"
    progress: bool = True  # progress bars

    def __post_init__(self) -> None:
        check_feature_names(self.features)
        if self.loss not in LOSS_KINDS:
            raise ValueError(f"loss must be one of {LOSS_KINDS}, got {self.loss!r}")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {sorted(METRICS)}, got {self.metric!r}")
        if self.template not in (None, "plain", "deepseek"):
            raise ValueError(f"template must be 'plain', 'deepseek' or None, got {self.template!r}")
        if self.hidden is not None and len(self.hidden) != 3:
            raise ValueError(f"hidden needs three widths, got {self.hidden!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        self.sampler_config()  # validates k and the ratios

    # -- derived configs -----------------------------------------------------------------------------
    def resolved_template(self) -> str:
        """The template name: explicit, else by encoder."""
        if self.template is not None:
            return self.template
        # the prover's own states (sidecar or hf:MODEL) are encoded in its prompt form, as `workbench encode` does
        return "deepseek" if self.encode and self.encode.startswith(("http://", "https://", "hf:")) else "plain"

    def template_text(self) -> str:
        from workbench.encode import DEEPSEEK_PROVER_TEMPLATE, PLAIN_TEMPLATE

        return PLAIN_TEMPLATE if self.resolved_template() == "plain" else DEEPSEEK_PROVER_TEMPLATE

    def embeddings_path(self) -> Path:
        return Path(self.embeddings) if self.embeddings else Path(self.output) / "embeddings"

    def model_config(self, d_encoder: int) -> EnergyHeadConfig:
        hidden = self.hidden or (SEED_HIDDEN if d_encoder >= WIDE_ENCODER else OFFLINE_HIDDEN)
        return EnergyHeadConfig(d_encoder=d_encoder, d_hidden1=hidden[0], d_hidden2=hidden[1], d_hidden3=hidden[2],
                                dropout=self.dropout, spectral_norm=self.spectral_norm,
                                standardize_inputs=self.standardize_inputs, features=tuple(self.features))

    def sampler_config(self) -> SamplerConfig:
        hard, medium, easy = self.ratios
        return SamplerConfig(k_negatives=self.k_negatives, hard_ratio=hard, medium_ratio=medium, easy_ratio=easy,
                             easy_source=self.easy_source, progress_negatives=self.progress_negatives,
                             balance_theorems=self.balance_theorems, seed=self.seed)

    def train_config(self) -> TrainConfig:
        warmup = self.warmup_steps if self.warmup_steps is not None else max(1, self.steps // 20)
        return TrainConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
                           warmup_steps=warmup, grad_clip=self.grad_clip, loss=self.loss, depth_weight=self.depth_weight,
                           margin=self.margin, eval_every=self.eval_every, patience=self.patience, metric=self.metric,
                           seed=self.seed, device=self.device)

    def pinned_to_checkpoint(self) -> EbmSettings:
        """For a resume: the architecture (widths, dropout, spectral norm, standardisation, features)
        of ``<output>/last``, whatever these settings say -- the weights only fit that one."""
        from workbench.ebm.checkpoint import read_meta

        last = Path(self.output) / "last"
        if not (last / "config.json").exists():
            return self
        m = read_meta(last).model
        pinned = self.replace(hidden=(m.d_hidden1, m.d_hidden2, m.d_hidden3), dropout=m.dropout, spectral_norm=m.spectral_norm,
                              standardize_inputs=m.standardize_inputs, features=m.features)
        changed = [f"{k}={getattr(self, k)!r} (checkpoint {getattr(pinned, k)!r})" for k in
                   ("hidden", "dropout", "spectral_norm", "standardize_inputs", "features")
                   if getattr(self, k) != getattr(pinned, k) and not (k == "hidden" and self.hidden is None)]
        if changed:
            log.warning("resume: keeping the checkpoint's architecture; ignoring %s", ", ".join(changed))
        return pinned

    # -- construction ----------------------------------------------------------------------------------
    def replace(self, **changes: Any) -> EbmSettings:
        return dataclasses.replace(self, **_normalise(changes))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> EbmSettings:
        """Strict: an unknown key is an error naming it (notebook parameters, JSON)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"EbmSettings: unknown setting(s) {unknown}; known: {sorted(known)}")
        return cls(**_normalise(dict(values)))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def add_flags(cls, parser: argparse.ArgumentParser) -> None:
        """One --flag per field, defaults from the dataclass (so the CLI cannot drift from notebook 04)."""
        d = cls()
        g = parser.add_argument_group("energy-head settings (defaults shared with notebook 04)")
        g.add_argument("--output", default=d.output, help="run folder")
        g.add_argument("--traces", help="LeanDojo traces (file or folder)")
        g.add_argument("--trajectories", nargs="+", default=[], metavar="PATH", help="trajectory Parquet files or folders")
        g.add_argument("--num-theorems", type=int, help="sample this many theorems from --traces")
        g.add_argument("--embeddings", help="embedding cache folder (default OUTPUT/embeddings)")
        g.add_argument("--encode", default=d.encode, metavar="local|hf:MODEL|URL|none",
                       help="encode missing states: 'local' (MiniLM), 'hf:MODEL' (a transformers model), the sidecar "
                            "URL, or 'none' (cache only)")
        g.add_argument("--template", choices=["plain", "deepseek"], help="state-text template (default: plain for local, deepseek for the sidecar)")
        g.add_argument("--eval-traces", nargs="+", default=[], metavar="PATH",
                       help="after training, evaluate on these LeanDojo files; writes OUTPUT/eval_<stem>.json")
        g.add_argument("--hidden", type=int, nargs=3, metavar=("H1", "H2", "H3"),
                       help=f"hidden widths (default {SEED_HIDDEN} for 4096-d encoders, {OFFLINE_HIDDEN} for MiniLM)")
        g.add_argument("--dropout", type=float, default=d.dropout)
        g.add_argument("--spectral-norm", action=argparse.BooleanOptionalAction, default=d.spectral_norm)
        g.add_argument("--standardize-inputs", action=argparse.BooleanOptionalAction, default=d.standardize_inputs)
        g.add_argument("--features", nargs="*", default=list(d.features), choices=list(FEATURE_NAMES),
                       help="structural features appended to the embedding (none: pass --features with no value)")
        g.add_argument("--k-negatives", type=int, default=d.k_negatives)
        g.add_argument("--ratios", type=float, nargs=3, default=list(d.ratios), metavar=("HARD", "MEDIUM", "EASY"))
        g.add_argument("--easy-source", choices=["auto", "negatives", "any", "none"], default=d.easy_source)
        g.add_argument("--progress-negatives", action=argparse.BooleanOptionalAction, default=d.progress_negatives)
        g.add_argument("--balance-theorems", action=argparse.BooleanOptionalAction, default=d.balance_theorems)
        g.add_argument("--val-fraction", type=float, default=d.val_fraction)
        g.add_argument("--loss", choices=list(LOSS_KINDS), default=d.loss)
        g.add_argument("--depth-weight", type=float, default=d.depth_weight)
        g.add_argument("--margin", type=float, default=d.margin)
        g.add_argument("--steps", type=int, default=d.steps)
        g.add_argument("--batch-size", type=int, default=d.batch_size)
        g.add_argument("--lr", type=float, default=d.lr)
        g.add_argument("--weight-decay", type=float, default=d.weight_decay)
        g.add_argument("--warmup-steps", type=int, help="default steps // 20")
        g.add_argument("--grad-clip", type=float, default=d.grad_clip)
        g.add_argument("--eval-every", type=int, default=d.eval_every)
        g.add_argument("--patience", type=int, default=d.patience)
        g.add_argument("--metric", choices=sorted(METRICS), default=d.metric)
        g.add_argument("--seed", type=int, default=d.seed)
        g.add_argument("--device", default=d.device)
        g.add_argument("--no-progress", dest="progress", action="store_false")

    @classmethod
    def from_flags(cls, args: argparse.Namespace) -> EbmSettings:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in vars(args).items() if k in names}
        if values.get("encode") == "none":
            values["encode"] = None
        return cls.from_dict(values)


def _normalise(values: dict[str, Any]) -> dict[str, Any]:
    """Lists (JSON, argparse, papermill) -> tuples; paths -> strings."""
    out = dict(values)
    for key in ("trajectories", "eval_traces", "features", "ratios", "hidden"):
        if key in out and out[key] is not None and not isinstance(out[key], tuple):
            v = out[key]
            out[key] = (str(v),) if isinstance(v, (str, Path)) and key in ("trajectories", "eval_traces") else tuple(
                str(x) if isinstance(x, Path) else x for x in v)
    for key in ("output", "traces", "embeddings"):
        if isinstance(out.get(key), Path):
            out[key] = str(out[key])
    return out


__all__ = ["EbmSettings", "OFFLINE_HIDDEN", "SEED_HIDDEN"]

