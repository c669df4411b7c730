"""End-to-end steps shared by ``workbench train-ebm``, notebook 04 and the benchmarks.

paths in -> records -> embeddings (cached; encoded on demand) -> split by theorem -> samplers
-> train -> held-out evaluation next to baselines -> summary JSON beside the checkpoints.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.ebm.checkpoint import load_model
from workbench.ebm.data import (
    ContrastiveSampler,
    MissingEmbeddings,
    SamplerConfig,
    attach_embeddings,
    records_from_traces,
    split_by_theorem,
)
from workbench.ebm.evaluate import (ProgressReport, SiblingReport, ground_truth_mask, progress_evaluation, record_energies,
                                    sibling_report)
from workbench.ebm.features import with_features
from workbench.ebm.model import EnergyHead, EnergyHeadConfig
from workbench.ebm.settings import EbmSettings
from workbench.ebm.scorer import EnergyScorer
from workbench.ebm.train import TrainConfig, TrainResult, as_tensor, batch_energies, train
from workbench.encode import ensure_embeddings

log = logging.getLogger(__name__)


def load_records(
    trajectories: Sequence[str | Path] = (),
    traces: str | Path | None = None,
    *,
    num_theorems: int | None = None,
    seed: int = 0,
    min_steps: int = 1,
) -> pd.DataFrame:
    """Mined trajectory records and/or ground-truth records built from LeanDojo traces."""
    frames = []
    if trajectories:
        from workbench.trajectory import read_trajectories

        mined = read_trajectories(list(trajectories))
        simulated = any(bool(p.get("simulated")) for p in mined.attrs.get("provenance", []))
        if simulated:  # the run metadata says so even if a producer left the column empty
            mined["simulated"] = True
        frames.append(mined)
    if traces is not None:
        from workbench.traces import load_traces

        ts = load_traces(traces, min_steps=min_steps, num_theorems=num_theorems, seed=seed)
        frames.append(records_from_traces(ts.theorems))
    if not frames:
        raise ValueError("give trajectory Parquet paths and/or a traces file")
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return df


def is_simulated(records: pd.DataFrame) -> bool:
    return "simulated" in records.columns and bool(records["simulated"].fillna(False).astype(bool).any())


@dataclass(frozen=True)
class PreparedData:
    train_records: pd.DataFrame  # with emb_row
    val_records: pd.DataFrame
    embeddings: np.ndarray  # float32 [n_states, d_encoder + n_features]: the head's inputs
    identity: Any  # workbench.encode.EncoderIdentity
    missing: MissingEmbeddings
    simulated: bool
    train_sampler: ContrastiveSampler
    val_sampler: ContrastiveSampler | None
    features: tuple[str, ...] = ()
    cache: Path | None = None  # the embedding cache, for scoring from state text


def _sampler_or_none(records: pd.DataFrame, config: SamplerConfig, what: str) -> ContrastiveSampler | None:
    if not len(records) or not (records["label"] == "positive").any():
        return None
    try:
        return ContrastiveSampler(records, config)
    except ValueError as e:  # e.g. a tiny validation split whose positives have no negative of their own
        log.warning("no %s sampler: %s", what, e)
        return None


def prepare(records: pd.DataFrame, table: Any, sampler: SamplerConfig, *, val_fraction: float = 0.1, seed: int = 0,
            features: Sequence[str] = (), cache: str | Path | None = None) -> PreparedData:
    if getattr(table, "identity", None) is None:
        raise ValueError("the embedding table has no encoder identity: a head trained on it could not refuse "
                         "embeddings from another encoder; re-encode with `workbench encode`")
    joined, missing = attach_embeddings(records, table)
    train_df, val_df = split_by_theorem(joined, val_fraction, seed)
    log.info(
        "records: %d train (%d theorems), %d val (%d theorems); %s",
        len(train_df), train_df["theorem_name"].nunique(), len(val_df), val_df["theorem_name"].nunique(), missing,
    )
    return PreparedData(
        train_records=train_df,
        val_records=val_df,
        embeddings=with_features(table.matrix, table.states, tuple(features)),
        identity=table.identity,
        missing=missing,
        simulated=is_simulated(records),
        train_sampler=ContrastiveSampler(train_df, sampler),
        val_sampler=_sampler_or_none(val_df, sampler, "validation"),
        features=tuple(features),
        cache=None if cache is None else Path(cache),
    )


@dataclass(frozen=True)
class Experiment:
    result: TrainResult
    model: EnergyHead  # the best checkpoint, eval mode
    val_energies: np.ndarray  # per val record
    val_pos_energies: np.ndarray  # fixed validation batch, for histograms
    val_neg_energies: np.ndarray
    progress: ProgressReport | None  # ground-truth paths in the val split
    siblings: SiblingReport | None  # mined sibling groups in the val split
    simulated: bool

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "simulated": self.simulated,
            "best_step": self.result.best_step,
            "best_metric": self.result.best_metric,
            "last_step": self.result.last_step,
            "stopped_early": self.result.stopped_early,
            "warnings": self.result.warnings,
            "final": self.result.history[-1] if self.result.history else None,
        }
        if self.progress is not None:
            out["progress"] = self.progress.to_dict()
        if self.siblings is not None:
            out["siblings"] = {"table": self.siblings.summary.reset_index().to_dict(orient="records"), "verdict": self.siblings.verdict}
        return out


def run_experiment(
    data: PreparedData,
    model_config: EnergyHeadConfig,
    train_config: TrainConfig,
    output_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
) -> Experiment:
    out = Path(output_dir)
    result = train(
        model_config, train_config, data.train_sampler, data.val_sampler, data.embeddings,
        encoder_identity=data.identity, output_dir=out, resume=resume, progress=progress,
    )
    model, meta = load_model(result.best_dir if (result.best_dir / "config.json").exists() else result.last_dir)
    val = data.val_records
    if len(val) and data.cache is not None:  # the one scoring path: state text -> encoder (cache) -> features -> head
        energies = EnergyScorer(model, meta, cache=data.cache).energies_of_states(val["state_pp"].tolist()).astype(np.float64)
    else:  # embeddings handed over in memory (tests, benchmarks): the same head on the same inputs
        energies = record_energies(model, val, data.embeddings) if len(val) else np.empty(0)
    pos_e = neg_e = np.empty(0)
    if data.val_sampler is not None:
        import torch

        with torch.no_grad():
            e_pos, e_neg = batch_energies(model, as_tensor(data.embeddings), data.val_sampler.fixed_batch())
        pos_e, neg_e = e_pos.numpy(), e_neg.numpy().ravel()
    has_gt = bool(len(val)) and ground_truth_mask(val).any()
    has_neg = len(val) and (val["label"] == "negative").any()
    exp = Experiment(
        result=result, model=model, val_energies=energies, val_pos_energies=pos_e, val_neg_energies=neg_e,
        progress=progress_evaluation(val, energies, seed=train_config.seed) if has_gt else None,
        siblings=sibling_report(val, energies) if has_neg else None,
        simulated=data.simulated,
    )
    summary = exp.summary()
    summary.update({"model": model_config.to_dict(), "train": train_config.to_dict(), "missing_embeddings": asdict(data.missing)})
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    for report in (exp.progress, exp.siblings):
        if report is not None:
            log.info("%s", report.verdict)
    return exp


# -- one run from EbmSettings (train-ebm and notebook 04) ---------------------------------------------
def load_inputs(settings: EbmSettings) -> tuple[pd.DataFrame, Any]:
    """(records, embedding table) for the settings' traces/trajectories, encoding missing states."""
    records = load_records(list(settings.trajectories), settings.traces, num_theorems=settings.num_theorems, seed=settings.seed)
    table = ensure_embeddings(records["state_pp"].tolist(), settings.embeddings_path(), settings.encoder(),
                              progress=settings.progress)
    return records, table


def prepare_from_settings(settings: EbmSettings, records: pd.DataFrame, table: Any) -> PreparedData:
    return prepare(records, table, settings.sampler_config(), val_fraction=settings.val_fraction, seed=settings.seed,
                   features=settings.features, cache=settings.embeddings_path())


def train_from_settings(settings: EbmSettings, data: PreparedData, *, resume: bool = False) -> Experiment:
    """Train, evaluate on the validation theorems, then on every ``eval_traces`` file."""
    out = Path(settings.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "settings.json").write_text(json.dumps(settings.to_dict(), indent=2, default=str) + "\n")
    exp = run_experiment(data, settings.model_config(data.identity.dim), settings.train_config(), out,
                         resume=resume, progress=settings.progress)
    for path in settings.eval_traces:
        evaluate_traces(exp.result.best_dir if (exp.result.best_dir / "config.json").exists() else exp.result.last_dir,
                        path, output_dir=out, cache=settings.embeddings_path(),
                        encoder=settings.encoder(),
                        seed=settings.seed, progress=settings.progress)
    return exp


def evaluate_traces(checkpoint: str | Path, traces: str | Path, *, output_dir: str | Path, cache: str | Path | None = None,
                    encoder: Any = None, seed: int = 0, progress: bool = False) -> ProgressReport:
    """Evaluate a trained head on another LeanDojo file (any split, any Mathlib commit) and write
    ``eval_<file stem>.json`` (model and baselines with intervals) to ``output_dir``."""
    records = load_records(traces=traces)
    scorer = EnergyScorer.from_checkpoint(checkpoint, encoder=encoder, cache=cache)
    energies = scorer.energies_of_states(records["state_pp"].tolist(), progress=progress).astype(np.float64)
    report = progress_evaluation(records, energies, seed=seed)
    path = Path(output_dir) / f"eval_{Path(traces).stem}.json"
    payload = {"traces": str(traces), "checkpoint": str(checkpoint), "encoder_identity": scorer.identity,
               "features": list(scorer.features), **report.to_dict()}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    log.info("%s: %s", path, report.verdict)
    return report
