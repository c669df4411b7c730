"""``EbmSettings``: every knob of an energy-head run, with the one set of defaults that both
``workbench train-ebm`` and notebook 04 use. The CLI flags are generated from the fields (their
``help`` metadata), and the training, sampler and model defaults are those of ``TrainConfig``,
``SamplerConfig`` and ``EnergyHeadConfig``: one source each.

The offline default (``encode='hashed'``, made-up no-progress siblings of ``TRAIN_KINDS`` and the parent
as hard negatives) was chosen on the shared validation split by the sibling checks first, the progress
headline second (issue 25; docs/EBM_REAL.md has the table and the rule).

Two defaults depend on the encoder and are resolved once the embedding width is known:
  hidden    None -> OFFLINE_HIDDEN for the offline encoders (local MiniLM, hashed n-grams, and '+' joins of
            them, whatever their width): as accurate as wider or narrower heads within the intervals, and
            cheap on CPU; otherwise the seed architecture 2048/1024/512 for wide encoders (the 4096-d
            sidecar, hf:MODEL) and OFFLINE_HIDDEN for narrow ones;
  template  None -> "plain" for the offline encoders, "deepseek" for the sidecar and hf:MODEL (the prover's prompt).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.checks import require_finite
from workbench.ebm.data import SamplerConfig
from workbench.ebm.features import FEATURE_NAMES, check_feature_names
from workbench.ebm.finetune import FinetuneConfig
from workbench.ebm.losses import LOSS_KINDS
from workbench.ebm.model import EnergyHeadConfig
from workbench.ebm.perturb import HELD_OUT_KINDS, PERTURBATION_KINDS, TRAIN_KINDS, check_kinds
from workbench.ebm.train import METRICS, TrainConfig

SEED_HIDDEN = (2048, 1024, 512)
OFFLINE_HIDDEN = (256, 128, 64)
WIDE_ENCODER = 1024  # embedding widths from here on get the seed architecture
log = logging.getLogger(__name__)


def _from(cls: type, name: str) -> Any:
    """The default of ``cls``'s field ``name`` (the one place that default is written)."""
    return cls.__dataclass_fields__[name].default


def _knob(default: Any, help: str, **flag: Any) -> Any:  # noqa: A002 - argparse's word
    """A setting with its flag's help (and argparse extras: choices, metavar, nargs)."""
    return field(default=default, metadata={"help": help, **flag})


@dataclass(frozen=True)
class EbmSettings:
    # -- inputs and outputs ------------------------------------------------------------------------
    output: str = _knob("runs/ebm", "run folder: best/, last/, history.jsonl, summary.json, eval_*.json")
    traces: str | None = _knob(None, "LeanDojo traces (file or folder): ground-truth states with remaining depth")
    trajectories: tuple[str, ...] = _knob((), "mined trajectory Parquet files or folders", metavar="PATH")
    num_theorems: int | None = _knob(None, "sample this many theorems from --traces")
    embeddings: str | None = _knob(None, "embedding cache folder (default OUTPUT/embeddings)")
    encode: str | None = _knob("hashed", "encode missing states: 'hashed' (character n-grams), 'local' (MiniLM), "
                               "'hf:MODEL' (a transformers model), the sidecar URL, several joined by '+' "
                               "(local+hashed: vectors concatenated), or 'none' (cache only)",
                               metavar="local|hashed|hf:MODEL|URL|A+B|none")
    template: str | None = _knob(None, "state-text template (default: plain for local, deepseek for the prover)",
                                 choices=["plain", "deepseek"])
    eval_traces: tuple[str, ...] = _knob((), "after training, evaluate on these LeanDojo files; writes "
                                         "OUTPUT/eval_<stem>.json", metavar="PATH")
    # -- no-progress siblings (ebm.perturb, ebm.checks) ------------------------------------------------
    perturbations: tuple[str, ...] = _knob(TRAIN_KINDS, "no-progress siblings made from each traced parent, trained "
                                           "on as hard negatives of its child (none: pass the flag with no value)",
                                           choices=list(PERTURBATION_KINDS), nargs="*")
    perturb_children: bool = _knob(True, "add the same kinds of junk to the child too (still closer than its parent), "
                                   "so that the junk itself is no cue")
    held_out_perturbations: tuple[str, ...] = _knob(HELD_OUT_KINDS, "kinds never trained on: the no-progress sibling "
                                                    "check reports them", choices=list(PERTURBATION_KINDS), nargs="*")
    fitted_baselines: bool = _knob(True, "fit the pairwise logistic baselines (structural features, TF-IDF "
                                   "n-grams) on the training split and report them beside the model")
    # -- tuning the encoder (ebm.finetune) -------------------------------------------------------------
    finetune_encoder: bool = _knob(False, "first tune the encoder ('local' or 'hf:MODEL'; in a '+' spec the first "
                                   "such part) as a pairwise ranker on the training split; saved to OUTPUT/encoder, "
                                   "which then encodes every state (cache OUTPUT/encoder/embeddings)")
    finetune_steps: int = _knob(_from(FinetuneConfig, "steps"), "encoder tuning steps")
    finetune_batch_size: int = _knob(_from(FinetuneConfig, "batch_size"), "pairs per encoder tuning step")
    finetune_lr: float = _knob(_from(FinetuneConfig, "lr"), "encoder tuning learning rate")
    finetune_max_length: int = _knob(_from(FinetuneConfig, "max_length"), "tokens per state while tuning")
    finetune_layers: int | None = _knob(_from(FinetuneConfig, "layers"), "tune only the top N layers (default all; "
                                        "a 7B decoder needs a few)")
    # -- model ---------------------------------------------------------------------------------------
    hidden: tuple[int, int, int] | None = _knob(None, f"hidden widths (default {OFFLINE_HIDDEN} for the offline "
                                                f"encoders, {SEED_HIDDEN} for the 4096-d prover's states)",
                                                metavar=("H1", "H2", "H3"))
    dropout: float = _knob(_from(EnergyHeadConfig, "dropout"), "dropout after every hidden layer")
    spectral_norm: bool = _knob(_from(EnergyHeadConfig, "spectral_norm"), "Lipschitz-1 linear layers")
    standardize_inputs: bool = _knob(_from(EnergyHeadConfig, "standardize_inputs"),
                                     "standardise inputs with the training statistics")
    features: tuple[str, ...] = _knob(FEATURE_NAMES, "structural features appended to the embedding (none: pass "
                                      "--features with no value)", choices=list(FEATURE_NAMES), nargs="*")
    # -- sampler -------------------------------------------------------------------------------------
    k_negatives: int = _knob(_from(SamplerConfig, "k_negatives"), "negatives per positive")
    ratios: tuple[float, float, float] = _knob(
        (_from(SamplerConfig, "hard_ratio"), _from(SamplerConfig, "medium_ratio"), _from(SamplerConfig, "easy_ratio")),
        "shares of hard (siblings), medium (same theorem) and easy negatives", metavar=("HARD", "MEDIUM", "EASY"))
    easy_source: str = _knob(_from(SamplerConfig, "easy_source"), "auto = other theorems' negatives if mined, else "
                             "none (never their proof states)", choices=["auto", "negatives", "any", "none"])
    progress_negatives: bool = _knob(_from(SamplerConfig, "progress_negatives"),
                                     "earlier states of the same proof are negatives")
    balance_theorems: bool = _knob(_from(SamplerConfig, "balance_theorems"),
                                   "every theorem equally likely to supply a positive")
    parent_negatives: bool = _knob(_from(SamplerConfig, "parent_negatives"),
                                   "the parent state itself is a hard negative of its child")
    val_fraction: float = _knob(0.1, "share of theorems held out for early stopping and the run's own evaluation")
    # -- training ------------------------------------------------------------------------------------
    loss: str = _knob(_from(TrainConfig, "loss"), "training loss", choices=list(LOSS_KINDS))
    depth_weight: float = _knob(_from(TrainConfig, "depth_weight"), "remaining-depth regression weight (0 = off)")
    margin: float = _knob(_from(TrainConfig, "margin"), "margin of the margin ranking loss")
    steps: int = _knob(_from(TrainConfig, "steps"), "optimiser steps")
    batch_size: int = _knob(_from(TrainConfig, "batch_size"), "positives per step")
    lr: float = _knob(_from(TrainConfig, "lr"), "peak learning rate")
    weight_decay: float = _knob(_from(TrainConfig, "weight_decay"), "AdamW weight decay")
    warmup_steps: int | None = _knob(_from(TrainConfig, "warmup_steps"), "linear warmup steps (default steps // 20)")
    grad_clip: float = _knob(_from(TrainConfig, "grad_clip"), "max global gradient norm (0 = off)")
    eval_every: int = _knob(_from(TrainConfig, "eval_every"), "steps between validation passes")
    patience: int = _knob(_from(TrainConfig, "patience"), "evaluations without improvement before stopping (0 = off)")
    metric: str = _knob(_from(TrainConfig, "metric"), "early-stopping metric", choices=sorted(METRICS))
    seed: int = _knob(_from(TrainConfig, "seed"), "seed of the split, sampler and initialisation")
    device: str = _knob(_from(TrainConfig, "device"), "auto (GPU when torch sees one), cpu, cuda, ...")
    progress: bool = _knob(True, "progress bars")

    def __post_init__(self) -> None:
        require_finite(self)  # --lr nan / --margin inf would pass every check below
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
        check_kinds(self.perturbations)
        check_kinds(self.held_out_perturbations)
        if self.finetune_encoder:
            self.finetune_base()  # names what it would tune
            self.finetune_config()
            self._check_tuned_spec()
        both = sorted(set(self.perturbations) & set(self.held_out_perturbations))
        if both:
            raise ValueError(f"perturbation kind(s) {both} are both trained on and held out: a held-out check must "
                             "measure kinds the model never saw")
        self.sampler_config()  # validates k and the ratios

    # -- derived configs -----------------------------------------------------------------------------
    def resolved_template(self) -> str:
        """The template name: explicit, else by encoder."""
        if self.template is not None:
            return self.template
        # the prover's own states (sidecar or hf:MODEL, alone or in a + spec) are encoded in its prompt form, as
        # `workbench encode` does
        from workbench.encode.factory import spec_kind, spec_parts

        return "deepseek" if any(spec_kind(p) in ("sidecar", "hf") for p in spec_parts(self.encode)) else "plain"

    def template_text(self) -> str:
        from workbench.encode import DEEPSEEK_PROVER_TEMPLATE, PLAIN_TEMPLATE

        return PLAIN_TEMPLATE if self.resolved_template() == "plain" else DEEPSEEK_PROVER_TEMPLATE

    def encoder_spec(self) -> str | None:
        """``encode``, with the tuned part replaced by the tuned folder when ``finetune_encoder`` is set."""
        if not self.encode or not self.finetune_encoder:
            return self.encode
        from workbench.encode.factory import CONCAT, HF_PREFIX, spec_parts

        parts = spec_parts(self.encode)
        parts[parts.index(self.finetune_base())] = HF_PREFIX + str(self.finetuned_encoder_dir())
        return CONCAT.join(parts)

    def finetune_base(self) -> str:
        """The part of ``encode`` that --finetune-encoder tunes: the first 'local' or 'hf:MODEL'."""
        from workbench.encode.factory import spec_kind, spec_parts

        for part in spec_parts(self.encode):
            if spec_kind(part) in ("local", "hf"):
                return part
        raise ValueError(f"--finetune-encoder needs 'local' or 'hf:MODEL' in --encode, got {self.encode!r}")

    def _check_tuned_spec(self) -> None:
        """Refuse, before any tuning, an output folder the tuned encoder's spec could not name."""
        from workbench.encode.factory import spec_parts

        if len(spec_parts(self.encoder_spec())) != len(spec_parts(self.encode)):
            raise ValueError(f"output {self.output!r}: --finetune-encoder names its tuned model by the folder "
                             f"{self.finetuned_encoder_dir()} in an encoder spec, where a '+' before an encoder's "
                             "name starts a new encoder; choose an output folder without one")

    def finetuned_encoder_dir(self) -> Path:
        return Path(self.output) / "encoder"

    def finetune_config(self) -> FinetuneConfig:
        return FinetuneConfig(steps=self.finetune_steps, batch_size=self.finetune_batch_size, lr=self.finetune_lr,
                              max_length=self.finetune_max_length, layers=self.finetune_layers, seed=self.seed,
                              device=self.device)

    def encoder(self) -> Any:
        """The encoder ``encode`` names (the tuned one with ``finetune_encoder``), with this run's template
        (``workbench.encode.factory``); None for ``encode=None`` (cache only)."""
        spec = self.encoder_spec()
        if not spec:
            return None
        from workbench.encode.factory import make_encoder

        return make_encoder(spec, template=self.template_text())

    def embeddings_path(self) -> Path:
        if self.embeddings:
            return Path(self.embeddings)
        # a tuned encoder's cache lives and dies with its weights
        return self.finetuned_encoder_dir() / "embeddings" if self.finetune_encoder else Path(self.output) / "embeddings"

    def default_hidden(self, d_encoder: int) -> tuple[int, int, int]:
        """``hidden`` when not given: by encoder (offline ones are cheap to fit whatever their width), else by width."""
        from workbench.encode.factory import spec_kind, spec_parts

        parts = spec_parts(self.encode)
        if parts and all(spec_kind(p) in ("local", "hashed") for p in parts):
            return OFFLINE_HIDDEN
        return SEED_HIDDEN if d_encoder >= WIDE_ENCODER else OFFLINE_HIDDEN

    def model_config(self, d_encoder: int) -> EnergyHeadConfig:
        hidden = self.hidden or self.default_hidden(d_encoder)
        return EnergyHeadConfig(d_encoder=d_encoder, d_hidden1=hidden[0], d_hidden2=hidden[1], d_hidden3=hidden[2],
                                dropout=self.dropout, spectral_norm=self.spectral_norm,
                                standardize_inputs=self.standardize_inputs, features=tuple(self.features))

    def sampler_config(self) -> SamplerConfig:
        hard, medium, easy = self.ratios
        return SamplerConfig(k_negatives=self.k_negatives, hard_ratio=hard, medium_ratio=medium, easy_ratio=easy,
                             easy_source=self.easy_source, progress_negatives=self.progress_negatives,
                             balance_theorems=self.balance_theorems, parent_negatives=self.parent_negatives,
                             seed=self.seed)

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
        """One --flag per field, generated from the fields (defaults and help): the CLI cannot drift from
        notebook 04, and a new setting gets its flag by being declared."""
        g = parser.add_argument_group("energy-head settings (defaults shared with notebook 04)")
        for f in dataclasses.fields(cls):
            g.add_argument("--" + f.name.replace("_", "-"), **_flag_options(f))

    @classmethod
    def from_flags(cls, args: argparse.Namespace) -> EbmSettings:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in vars(args).items() if k in names}
        if values.get("encode") == "none":
            values["encode"] = None
        return cls.from_dict(values)


def _flag_options(f: dataclasses.Field) -> dict[str, Any]:
    """argparse options for one field, from its type and metadata."""
    meta = dict(f.metadata)
    opts: dict[str, Any] = {"help": meta.pop("help"), "default": f.default}
    kind = str(f.type).replace(" | None", "")
    if kind == "bool":
        return opts | {"action": argparse.BooleanOptionalAction}
    if kind.startswith("tuple["):
        item = kind[len("tuple["):].split(",")[0].strip("] ")
        opts |= {"nargs": "+" if kind.endswith(", ...]") else kind.count(",") + 1, "type": {"int": int, "float": float}.get(item, str)}
        opts["default"] = list(f.default) if f.default is not None else None
    else:
        opts["type"] = {"int": int, "float": float}.get(kind, str)
    return opts | meta  # metadata overrides (nargs="*", choices, metavar)


def _normalise(values: dict[str, Any]) -> dict[str, Any]:
    """Lists (JSON, argparse, papermill) -> tuples; paths -> strings."""
    out = dict(values)
    for key in ("trajectories", "eval_traces", "features", "ratios", "hidden", "perturbations", "held_out_perturbations"):
        if key in out and out[key] is not None and not isinstance(out[key], tuple):
            v = out[key]
            out[key] = (str(v),) if isinstance(v, (str, Path)) and key in ("trajectories", "eval_traces") else tuple(
                str(x) if isinstance(x, Path) else x for x in v)
    for key in ("output", "traces", "embeddings"):
        if isinstance(out.get(key), Path):
            out[key] = str(out[key])
    return out


__all__ = ["EbmSettings", "OFFLINE_HIDDEN", "SEED_HIDDEN"]

