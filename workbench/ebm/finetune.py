"""Fine-tune a transformer encoder as a pairwise ranker (``train-ebm --finetune-encoder``).

The encoder (the local MiniLM, or any ``hf:MODEL``) gets a linear energy on its mean-pooled last hidden
state and is trained with RankNet on the training split's ranking pairs -- the pairs the head sees:
later vs earlier state of a proof, a positive vs the negatives sharing its parent (made-up no-progress
siblings included) -- each theorem weighing the same. The tuned weights are saved as a transformers folder
with ``workbench_encoder.json`` (``workbench.encode.hf.resolve_model`` reads it), so ``hf:FOLDER`` encodes
with an identity that names the base model and a hash of the tuned weights: a cache or a head built on it
never mixes with the base model's.

On a CPU only small models are practical (MiniLM: seconds per step); ``layers`` trains only the top
layers (embeddings and the rest frozen), which is what makes a 7B decoder fit on one GPU.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.ebm.baselines import pair_weights, training_pairs
from workbench.ebm.train import warmup_cosine
from workbench.progress import progress_bar

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class FinetuneConfig:
    steps: int = 300
    batch_size: int = 16  # pairs per step
    lr: float = 2e-5
    weight_decay: float = 0.01
    max_length: int = 256  # tokens per state while tuning (the encoder itself keeps its own window)
    layers: int | None = None  # train only the top N transformer layers (None: all)
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.max_length < 8:
            raise ValueError("finetune steps and batch size must be >= 1, max_length >= 8")
        if self.layers is not None and self.layers < 1:
            raise ValueError(f"finetune layers must be >= 1 or None, got {self.layers}")


def base_model(spec: str) -> tuple[str, str]:
    """(folder or hub name to load, name to record) for the encoder spec being tuned."""
    from workbench.encode.factory import HF_PREFIX, spec_kind
    from workbench.encode.hf import MINILM_ALIAS, resolve_model

    kind = spec_kind(spec)
    if kind not in ("local", "hf"):
        raise ValueError(f"--finetune-encoder tunes 'local' or 'hf:MODEL', not {spec!r}")
    name = MINILM_ALIAS if kind == "local" else spec[len(HF_PREFIX):]
    path, recorded, _ = resolve_model(name)
    return path, recorded


def _top_layers_only(model: Any, n: int) -> None:
    """Freeze everything but the last ``n`` blocks of the model's longest layer list."""
    from torch import nn

    stacks = [m for m in model.modules() if isinstance(m, nn.ModuleList)]
    if not stacks:
        raise ValueError("cannot find the model's layer list to tune only its top layers")
    blocks = max(stacks, key=len)
    for p in model.parameters():
        p.requires_grad_(False)
    for block in list(blocks)[-n:]:
        for p in block.parameters():
            p.requires_grad_(True)


def finetune_encoder(spec: str, records: pd.DataFrame, out_dir: str | Path, config: FinetuneConfig = FinetuneConfig(), *,
                     template: str, progress: bool = False) -> Path:
    """Tune ``spec``'s encoder on ``records`` (the training split) and save it to ``out_dir`` (replaced)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from workbench.encode import state_text
    from workbench.encode.hf import FINETUNED_META, mean_pool, resolve_device

    r = records.reset_index(drop=True)
    pairs = training_pairs(r)
    if pairs.empty:
        raise ValueError("no training pairs to tune the encoder on")
    path, name = base_model(spec)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "right"  # mean pooling over the mask; a causal model's real tokens never see the pads
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModel.from_pretrained(path).to(device)
    if config.layers is not None:
        _top_layers_only(model, config.layers)
    head = torch.nn.Linear(model.config.hidden_size, 1).to(device)
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    warmup = max(1, config.steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, config.steps, warmup))
    texts = [state_text(s, template) for s in r["state_pp"].astype(str)]
    p = pair_weights(pairs["theorem"].to_numpy())
    p /= p.sum()
    better, worse = pairs["better"].to_numpy(), pairs["worse"].to_numpy()

    def energies(rows: np.ndarray) -> Any:
        batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=config.max_length,
                          return_tensors="pt").to(device)
        hidden = model(**batch).last_hidden_state
        return head(mean_pool(hidden, batch["attention_mask"])).squeeze(-1)

    model.train()
    losses: list[float] = []
    bar = progress_bar(iterable=range(config.steps), desc="finetune-encoder", disable=not progress)
    for _ in bar:
        pick = rng.choice(len(pairs), size=config.batch_size, replace=True, p=p)
        rows, where = np.unique(np.concatenate([better[pick], worse[pick]]), return_inverse=True)
        e = energies(rows)
        e_better, e_worse = e[where[: config.batch_size]], e[where[config.batch_size:]]
        loss = torch.nn.functional.softplus(e_better - e_worse).mean()  # RankNet: the better state lower
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    bar.close()

    out = Path(out_dir)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    digest = hashlib.sha256()
    for f in sorted(tmp.glob("*.safetensors")):
        with f.open("rb") as weights:  # streamed: a 7B model's shards are tens of GB
            for block in iter(lambda: weights.read(1 << 20), b""):
                digest.update(block)
    meta = {"name": f"{name} [ranker-finetuned]", "revision": digest.hexdigest()[:16], "base": name,
            "config": asdict(config), "pairs": int(len(pairs)), "theorems": int(pairs["theorem"].nunique()),
            "loss_first_20": float(np.mean(losses[:20])), "loss_last_20": float(np.mean(losses[-20:])),
            "template": template}
    (tmp / FINETUNED_META).write_text(json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    log.info("encoder tuned as a ranker: %s (loss %.3f -> %.3f over %d steps) saved to %s", meta["name"],
             meta["loss_first_20"], meta["loss_last_20"], config.steps, out)
    return out


__all__ = ["FinetuneConfig", "base_model", "finetune_encoder"]
