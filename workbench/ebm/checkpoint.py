"""Checkpoints: weights (safetensors), config JSON, training state for resume, encoder identity.

A checkpoint directory holds
  model.safetensors    the head's state dict (spectral-norm u/v vectors included)
  config.json          model config, training config, encoder identity + state-text template,
                       step, best metric -- everything needed to rebuild and to refuse misuse
  training_state.pt    optimiser, LR schedule, sampler and torch RNG state (resume only): tensors and plain
                       Python values only, read with ``torch.load(weights_only=True)`` (never unpickles code)

An energy head only means something for the encoder and state-text template it was trained on, so
scoring embeddings from any other encoder raises ``EncoderMismatchError`` (``ebm/scorer.py`` scores).

A checkpoint is written whole into a temporary sibling folder and renamed into place (the previous one
is moved aside first and deleted last; a kill in between is undone by the next reader), and all three
files carry the same ``checkpoint_id``: a resume refuses pieces that do not belong together.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import re
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from workbench.ebm.model import EnergyHead, EnergyHeadConfig

log = logging.getLogger(__name__)

FORMAT = "workbench.ebm.checkpoint/1"
WEIGHTS, CONFIG, TRAINING_STATE = "model.safetensors", "config.json", "training_state.pt"
IDENTITY_FIELDS = ("model", "dim", "pooling", "dtype", "template")


class EncoderMismatchError(ValueError):
    """Embeddings come from an encoder (or state-text template) the head was not trained on."""


class CheckpointMismatchError(ValueError):
    """A checkpoint's pieces do not belong together, or it cannot continue with the requested model."""


def _aside(directory: Path) -> Path:
    return directory.with_name(directory.name + ".old")


def _staging(directory: Path) -> Path:
    return directory.with_name(directory.name + ".tmp")


def recover(directory: str | Path) -> Path:
    """Undo what a kill during :func:`save_checkpoint` left: the previous checkpoint if the new one never landed."""
    directory = Path(directory)
    aside, staging = _aside(directory), _staging(directory)
    if not directory.exists() and aside.exists():
        os.replace(aside, directory)  # killed between moving the old one aside and renaming the new one in
    if aside.exists():
        shutil.rmtree(aside)  # the new one landed; the old one was not yet deleted
    if staging.exists():
        shutil.rmtree(staging)  # a checkpoint never completed
    return directory


def identity_to_dict(identity: Any) -> dict[str, Any]:
    """``workbench.encode.EncoderIdentity`` (or a mapping with the same fields) -> plain dict."""
    if identity is None:
        raise ValueError("an encoder identity is required (workbench.encode.EncoderIdentity)")
    if callable(getattr(identity, "to_dict", None)):  # EncoderIdentity: JSON-ready (a composite's parts as lists)
        d = identity.to_dict()
    elif dataclasses.is_dataclass(identity) and not isinstance(identity, type):
        d = dataclasses.asdict(identity)
    elif isinstance(identity, Mapping):
        d = dict(identity)
    else:
        raise TypeError(f"encoder identity must be an EncoderIdentity or a mapping, got {type(identity).__name__}")
    missing = [f for f in IDENTITY_FIELDS if f not in d]
    if missing:
        raise ValueError(f"encoder identity lacks field(s) {missing}: {d}")
    return d


def check_identity(expected: Mapping[str, Any], actual: Any, *, where: str = "checkpoint") -> None:
    got = identity_to_dict(actual)
    diffs = [
        f"{k}: trained on {expected.get(k)!r}, got {got.get(k)!r}"
        for k in sorted(set(expected) | set(got))
        if expected.get(k) != got.get(k)
    ]
    if diffs:
        raise EncoderMismatchError(
            f"refusing to score: these embeddings come from a different encoder than the one {where} "
            f"was trained on ({'; '.join(diffs)}). Re-encode the states with the training encoder "
            "and template, or train a head for this encoder."
        )


@dataclass(frozen=True, slots=True)
class CheckpointMeta:
    model: EnergyHeadConfig
    encoder_identity: dict[str, Any]
    step: int
    best_metric: float | None
    best_step: int | None
    metric_name: str | None
    train: dict[str, Any] | None  # the training config snapshot, for provenance

    @property
    def template(self) -> str:
        return str(self.encoder_identity["template"])


def save_checkpoint(
    directory: str | Path,
    model: EnergyHead,
    *,
    encoder_identity: Any,
    step: int,
    best_metric: float | None = None,
    best_step: int | None = None,
    metric_name: str | None = None,
    train_config: Mapping[str, Any] | None = None,
    training_state: Mapping[str, Any] | None = None,
) -> Path:
    """Write (or replace) a checkpoint directory as a whole: readers see the old one or the new one."""
    final = recover(directory)
    directory = _staging(final)
    directory.mkdir(parents=True)
    checkpoint_id = uuid.uuid4().hex
    identity = identity_to_dict(encoder_identity)
    if int(identity["dim"]) != model.config.d_encoder:
        raise ValueError(
            f"encoder identity dim {identity['dim']} != model d_encoder {model.config.d_encoder}"
        )
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, str(directory / WEIGHTS), metadata={"format": FORMAT, "checkpoint_id": checkpoint_id})
    config = {
        "format": FORMAT,
        "checkpoint_id": checkpoint_id,
        "model": model.config.to_dict(),
        "encoder_identity": identity,
        "state_text_template": identity["template"],
        "step": int(step),
        "best_metric": None if best_metric is None else float(best_metric),
        "best_step": best_step,
        "metric_name": metric_name,
        "train": dict(train_config) if train_config is not None else None,
        "num_parameters": model.num_parameters(),
    }
    (directory / CONFIG).write_text(json.dumps(config, indent=2, default=str) + "\n")
    if training_state is not None:
        torch.save({**_loadable(training_state), "checkpoint_id": checkpoint_id}, directory / TRAINING_STATE)
    for f in directory.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    if final.exists():
        os.replace(final, _aside(final))
    os.replace(directory, final)
    shutil.rmtree(_aside(final), ignore_errors=True)
    return final


def _loadable(obj: Any) -> Any:
    """``obj`` with numpy arrays as tensors and numpy scalars as Python numbers: what ``weights_only`` loads."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return {k: _loadable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_loadable(v) for v in obj)
    return obj


def read_meta(directory: str | Path) -> CheckpointMeta:
    path = recover(directory) / CONFIG
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"no checkpoint config at {path}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from e
    if cfg.get("format") != FORMAT:
        raise ValueError(f"{path}: field 'format' is {cfg.get('format')!r}, expected {FORMAT!r}")
    return CheckpointMeta(
        model=EnergyHeadConfig.from_dict(cfg["model"]),
        encoder_identity=identity_to_dict(cfg["encoder_identity"]),
        step=int(cfg["step"]),
        best_metric=cfg.get("best_metric"),
        best_step=cfg.get("best_step"),
        metric_name=cfg.get("metric_name"),
        train=cfg.get("train"),
    )


def load_model(directory: str | Path) -> tuple[EnergyHead, CheckpointMeta]:
    """Rebuild the head in eval mode from a checkpoint directory."""
    meta = read_meta(directory)
    model = EnergyHead(meta.model)
    path = Path(directory) / WEIGHTS
    state = load_file(str(path))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointMismatchError(f"{path}: weights do not fit the model described in {CONFIG} ({e})") from e
    model.eval()
    return model, meta


def load_training_state(directory: str | Path) -> dict[str, Any]:
    """The optimiser/sampler/RNG state, checked to belong to the same save as the weights and config."""
    directory = recover(directory)
    path = directory / TRAINING_STATE
    if not path.exists():
        raise FileNotFoundError(f"{path} missing: this checkpoint cannot be resumed (weights only)")
    try:  # tensors and plain values only: a file that needs more is not ours, and is never unpickled
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        raise CheckpointMismatchError(
            f"{path}: holds {found.group(1) if found else 'an object'}, not only tensors and plain values, so it "
            "is not loaded (a file from an older workbench, or not ours). Resume from another checkpoint or "
            "train into a new --output") from None
    if not isinstance(state, dict):
        raise CheckpointMismatchError(f"{path}: not a training state (a {type(state).__name__})")
    ids = {"config.json": json.loads((directory / CONFIG).read_text()).get("checkpoint_id"),
           "training_state.pt": state.pop("checkpoint_id", None)}
    with safe_open(str(directory / WEIGHTS), framework="pt") as st:
        ids["model.safetensors"] = (st.metadata() or {}).get("checkpoint_id")
    if len(set(ids.values())) > 1:
        raise CheckpointMismatchError(
            f"{directory}: its files come from different saves ({ids}); a copy or an interrupted write mixed "
            "them. Resume from another checkpoint (e.g. best/) or start a new --output")
    return state


def check_resumable(meta: CheckpointMeta, identity: Any, *, where: str | Path) -> None:
    """Refuse to continue a run on embeddings from another encoder (width, model, template...), naming what differs.

    (The architecture is the checkpoint's on resume: train() keeps it and warns about differing flags.)
    """
    got = identity_to_dict(identity)
    diffs = [f"{'encoder width' if k == 'dim' else k}: checkpoint {meta.encoder_identity.get(k)!r}, "
             f"these embeddings {got.get(k)!r}" for k in IDENTITY_FIELDS if meta.encoder_identity.get(k) != got.get(k)]
    if diffs:
        raise CheckpointMismatchError(
            f"cannot --resume {where}: it was trained on another encoder ({'; '.join(diffs)}). Resume with the "
            "embeddings it was trained on, or train into a new --output")
