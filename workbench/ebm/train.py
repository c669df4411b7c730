"""Training loop for the energy head, readable top to bottom (nanoGPT style).

    model, optimiser, schedule  <- configs (or the last checkpoint, to resume)
    fixed validation set        <- val sampler, every positive once
    for step in steps:
        batch -> embeddings -> energies -> loss -> backward -> clip -> AdamW -> LR schedule
        every eval_every steps: validation metrics, health warnings, checkpoint last/best, early stop
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from workbench.progress import progress_bar
from workbench.ebm.checkpoint import load_training_state, recover, save_checkpoint
from workbench.ebm.data import ContrastiveBatch, ContrastiveSampler
from workbench.ebm.losses import LossKind, LossParts, contrastive_loss
from workbench.ebm.metrics import contrastive_metrics, health_warnings
from workbench.ebm.model import EnergyHead, EnergyHeadConfig

log = logging.getLogger(__name__)

# metric name -> whether larger is better
METRICS: dict[str, bool] = {"val_loss": False, "val_rank_acc": True, "val_auroc": True, "val_pairwise_acc": True}


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """The training knobs and their one set of defaults (``EbmSettings`` takes its defaults from here; the
    checkpoint saves the config it trained with)."""

    steps: int = 600
    batch_size: int = 128  # positives per step; each brings k negatives
    lr: float = 3e-4
    weight_decay: float = 0.01  # not applied to biases and the log-temperature
    warmup_steps: int | None = None  # linear warmup, then cosine to min_lr_ratio * lr; None = steps // 20
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0  # max global grad norm; 0 disables
    loss: LossKind = "ranknet"
    depth_weight: float = 0.0  # remaining-depth regression on positives; 0 disables (it cost ~1 point, README)
    margin: float = 1.0  # margin ranking loss only
    eval_every: int = 50
    patience: int = 5  # evaluations without improvement before stopping; 0 disables
    metric: Literal["val_loss", "val_rank_acc", "val_auroc", "val_pairwise_acc"] = "val_pairwise_acc"
    seed: int = 0
    device: str = "auto"  # "auto" = the GPU when torch sees one, else the CPU; or any torch device name

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {sorted(METRICS)}, got {self.metric!r}")
        if self.steps < 1 or self.batch_size < 1 or self.eval_every < 1:
            raise ValueError("steps, batch_size and eval_every must be >= 1")
        if self.warmup_steps is None:
            object.__setattr__(self, "warmup_steps", max(1, self.steps // 20))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class TrainResult:
    output_dir: Path
    history: list[dict[str, float]]  # one row per evaluation: step, lr, train_*, val_*
    best_metric: float | None
    best_step: int | None
    last_step: int
    stopped_early: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def best_dir(self) -> Path:
        return self.output_dir / "best"

    @property
    def last_dir(self) -> Path:
        return self.output_dir / "last"


def as_tensor(embeddings: np.ndarray) -> torch.Tensor:
    """float32 tensor view of an embedding matrix (copied only if read-only or not float32/contiguous)."""
    arr = np.ascontiguousarray(embeddings, dtype=np.float32)
    if not arr.flags.writeable:  # e.g. straight from Arrow; torch wants writable memory
        arr = arr.copy()
    return torch.from_numpy(arr)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: no CUDA device is available here (torch.cuda.is_available() is False); "
                         "use --device cpu or --device auto")
    return device


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Multiplier of cfg.lr at a 0-based step: linear warmup, then cosine down to min_lr_ratio."""
    return warmup_cosine(step, cfg.steps, cfg.warmup_steps, cfg.min_lr_ratio)


def warmup_cosine(step: int, steps: int, warmup: int, min_ratio: float = 0.0) -> float:
    """Learning-rate multiplier at a 0-based step: linear warmup over ``warmup`` steps, then a cosine from 1
    down to ``min_ratio`` at ``steps``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(model: EnergyHead, cfg: TrainConfig) -> torch.optim.AdamW:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 else no_decay).append(p)  # matrices decay; biases, log-temp do not
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
    )


def batch_energies(model: EnergyHead, emb: torch.Tensor, batch: ContrastiveBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass over positives and negatives together -> e_pos [B], e_neg [B, k]."""
    b, k = batch.neg.shape
    rows = torch.from_numpy(np.concatenate([batch.pos[:, None], batch.neg], axis=1)).to(emb.device)  # [B, 1 + k]
    e = model(emb[rows.reshape(-1)]).view(b, 1 + k)  # [B * (1 + k), d] -> [B, 1 + k]
    return e[:, 0], e[:, 1:]


def batch_loss(model: EnergyHead, emb: torch.Tensor, batch: ContrastiveBatch, cfg: TrainConfig) -> tuple[LossParts, torch.Tensor, torch.Tensor]:
    e_pos, e_neg = batch_energies(model, emb, batch)
    parts = contrastive_loss(
        e_pos, e_neg, model.temperature, torch.from_numpy(batch.remaining_depth).to(e_pos.device),
        kind=cfg.loss, depth_weight=cfg.depth_weight, margin=cfg.margin,
    )
    return parts, e_pos, e_neg


@torch.no_grad()
def evaluate_batch(model: EnergyHead, emb: torch.Tensor, batch: ContrastiveBatch, cfg: TrainConfig, *, chunk: int = 1024) -> dict[str, float]:
    """Loss parts and contrastive metrics on a fixed batch, in eval mode, chunked to bound memory."""
    was_training = model.training
    model.eval()
    pos_e, neg_e, totals = [], [], {"loss": 0.0, "loss_contrastive": 0.0, "loss_depth": 0.0}
    n = batch.pos.shape[0]
    for s in range(0, n, chunk):
        sub = ContrastiveBatch(*(getattr(batch, f)[s : s + chunk] for f in ("pos", "neg", "tier", "remaining_depth", "depth_from_root")))
        parts, e_pos, e_neg = batch_loss(model, emb, sub, cfg)
        for key, v in parts.as_floats().items():
            totals[key] += v * sub.pos.shape[0] / n
        pos_e.append(e_pos.cpu().numpy())
        neg_e.append(e_neg.cpu().numpy())
    model.train(was_training)
    return {**totals, **contrastive_metrics(np.concatenate(pos_e), np.concatenate(neg_e))}


def _improved(value: float, best: float | None, higher_is_better: bool) -> bool:
    if math.isnan(value):
        return False
    return best is None or (value > best if higher_is_better else value < best)


def train(
    model_config: EnergyHeadConfig,
    cfg: TrainConfig,
    train_sampler: ContrastiveSampler,
    val_sampler: ContrastiveSampler | None,
    embeddings: np.ndarray,
    *,
    encoder_identity: Any,
    output_dir: str | Path,
    resume: bool = False,
    until_step: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a head; checkpoints go to output_dir/last and output_dir/best.

    resume: continue from output_dir/last (weights, optimiser, schedule, sampler and RNG state).
    until_step: stop after this step even if cfg.steps is larger (a resumable partial run).
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    higher_is_better = METRICS[cfg.metric]
    if resume:  # a kill mid-save left `last` aside (last.old): put it back before asking what there is
        recover(out / "last")
        recover(out / "best")
    resuming = resume and (out / "last" / "training_state.pt").exists()
    if resuming:
        # the architecture is the checkpoint's, whatever the flags say now: the weights only fit it
        from workbench.ebm.checkpoint import check_resumable, read_meta

        check_resumable(read_meta(out / "last"), encoder_identity, where=out / "last")  # before any width error
        pinned = read_meta(out / "last").model
        if pinned != model_config:
            changed = {k: (v, getattr(model_config, k)) for k, v in pinned.to_dict().items() if v != model_config.to_dict()[k]}
            log.warning("resume: keeping the checkpoint's architecture; ignoring %s",
                        ", ".join(f"{k}={new!r} (checkpoint {old!r})" for k, (old, new) in changed.items()))
        model_config = pinned
    emb = as_tensor(embeddings).to(device)  # [n_states, d_input], all on the training device
    if emb.shape[1] != model_config.d_input:
        raise ValueError(f"inputs have width {emb.shape[1]}, model expects {model_config.d_input} "
                         f"(d_encoder {model_config.d_encoder} + features {list(model_config.features)})")

    # -- model, optimiser, schedule ---------------------------------------------------------------
    torch.manual_seed(cfg.seed)
    model = EnergyHead(model_config).to(device)
    optimizer = make_optimizer(model, cfg)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_at(s, cfg))
    start, best, best_step, bad_evals = 0, None, None, 0
    history: list[dict[str, float]] = []
    if resuming:
        from workbench.ebm.checkpoint import load_model

        loaded, meta = load_model(out / "last")
        model.load_state_dict(loaded.state_dict())
        st = load_training_state(out / "last")
        optimizer.load_state_dict(st["optimizer"])
        schedule.load_state_dict(st["schedule"])
        train_sampler.load_state_dict(st["sampler"])
        torch.set_rng_state(st["torch_rng"])
        start, best, best_step, bad_evals = meta.step, st["best"], st["best_step"], st["bad_evals"]
        history = list(st["history"])
        log.info("resumed from %s at step %d (best %s=%s)", out / "last", start, cfg.metric, best)
    elif resume:
        log.info("nothing to resume in %s: starting from scratch", out)
    if start == 0 and (model_config.standardize_inputs or model_config.features):
        # statistics of the training split only: validation states must not leak into the model
        model.set_input_statistics(emb[torch.from_numpy(train_sampler.embedding_rows())])
    model.train()

    val_batch = val_sampler.fixed_batch() if val_sampler is not None and len(val_sampler) else None
    end = min(cfg.steps, until_step) if until_step is not None else cfg.steps
    warnings: list[str] = []
    running = {"loss": 0.0, "loss_contrastive": 0.0, "loss_depth": 0.0}
    n_running, stopped_early, step = 0, False, start

    def save(directory: Path) -> None:
        save_checkpoint(
            directory, model, encoder_identity=encoder_identity, step=step, best_metric=best,
            best_step=best_step, metric_name=cfg.metric, train_config=cfg.to_dict(),
            training_state={
                "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                "sampler": train_sampler.state_dict(), "torch_rng": torch.get_rng_state(),
                "best": best, "best_step": best_step, "bad_evals": bad_evals, "history": history,
            },
        )

    # -- the loop ---------------------------------------------------------------------------------
    bar = progress_bar(iterable=range(start, end), desc="train-ebm", disable=not progress, initial=start, total=end)
    for step0 in bar:
        step = step0 + 1
        batch = train_sampler.sample(cfg.batch_size)
        parts, e_pos, e_neg = batch_loss(model, emb, batch, cfg)
        optimizer.zero_grad(set_to_none=True)
        parts.total.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        schedule.step()
        for key, v in parts.as_floats().items():
            running[key] += v
        n_running += 1

        if step % cfg.eval_every and step != end:
            continue
        # -- evaluation interval ------------------------------------------------------------------
        row: dict[str, float] = {"step": step, "lr": optimizer.param_groups[0]["lr"], "temperature": float(model.temperature.detach())}
        row.update({f"train_{k}": v / n_running for k, v in running.items()})
        row.update({f"train_{k}": v for k, v in contrastive_metrics(e_pos.detach().cpu().numpy(), e_neg.detach().cpu().numpy()).items()})
        running, n_running = dict.fromkeys(running, 0.0), 0
        if val_batch is not None:
            row.update({f"val_{k}": v for k, v in evaluate_batch(model, emb, val_batch, cfg).items()})
            health = {k[4:]: v for k, v in row.items() if k.startswith("val_")}
        else:
            health = {k[6:]: v for k, v in row.items() if k.startswith("train_")}
        # With no labelled negatives (traces only) the "negatives" are other theorems' proof states,
        # so their energy being lower is no polarity error.
        polarity_warmup = cfg.warmup_steps if train_sampler.has_labelled_negatives else end
        warnings.extend(health_warnings(health, step=step, warmup_steps=polarity_warmup))
        history.append(row)
        # without a validation split, early stopping and "best" fall back to the training twin
        value = row[cfg.metric] if val_batch is not None else row["train_" + cfg.metric[4:]]
        if _improved(value, best, higher_is_better):
            best, best_step, bad_evals = value, step, 0
            save(out / "best")
        else:
            bad_evals += 1
        save(out / "last")
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", **{cfg.metric: f"{value:.3f}"})
        log.info("step %d %s", step, " ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "step"))
        if math.isnan(row["train_loss"]):
            log.error("loss is NaN at step %d: stopping", step)
            stopped_early = True
            break
        if cfg.patience and bad_evals >= cfg.patience:
            log.info("early stop at step %d: %s has not improved for %d evaluations", step, cfg.metric, bad_evals)
            stopped_early = True
            break
    bar.close()

    with open(out / "history.jsonl", "w") as f:
        for row in history:
            f.write(json.dumps(row) + "\n")
    return TrainResult(out, history, best, best_step, step, stopped_early, warnings)
