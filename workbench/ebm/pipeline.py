"""End-to-end steps shared by ``workbench train-ebm``, notebook 04 and the benchmarks.

paths in -> records -> embeddings (cached; encoded on demand) -> split by theorem -> samplers
-> train -> held-out evaluation next to baselines -> summary JSON beside the checkpoints.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.ebm.checkpoint import identity_to_dict, load_model
from workbench.ebm.data import (
    ContrastiveSampler,
    MissingEmbeddings,
    SamplerConfig,
    attach_embeddings,
    records_from_traces,
    split_by_theorem,
    with_perturbations,
)
from workbench.ebm.baselines import (POSITION, FittedBaselines, both_directions, first_states, fit_baselines,
                                     position_energies)
from workbench.ebm.checks import CheckReport, check_pairs, mined_sibling_pairs, pair_checks
from workbench.ebm.finetune import finetune_encoder
from workbench.ebm.evaluate import (MODEL, ProgressReport, SiblingReport, progress_evaluation,
                                    record_energies, sibling_report)
from workbench.ebm.perturb import HELD_OUT_KINDS
from workbench.ebm.records import ground_truth_mask, made_up_mask
from workbench.ebm.features import with_features
from workbench.ebm.model import EnergyHead, EnergyHeadConfig
from workbench.ebm.settings import EbmSettings
from workbench.ebm.scorer import EnergyScorer, cached_table
from workbench.ebm.train import TrainConfig, TrainResult, as_tensor, batch_energies, train
from workbench.encode import ensure_embeddings
from workbench.encode.hf import FINETUNED_META

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
    checks: CheckReport | None = None  # sibling checks on the val split's ground-truth paths
    mined: CheckReport | None = None  # the val split's real (mined) siblings, beside the baselines
    baselines: FittedBaselines | None = None  # fitted on the training split
    evaluations: dict[str, TraceEvaluation] = field(default_factory=dict)  # per --eval-traces file

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
        if self.checks is not None:
            out["checks"] = self.checks.to_dict()
        if self.mined is not None:
            out["mined_siblings"] = self.mined.to_dict()
        if self.baselines is not None:
            out["baselines"] = self.baselines.describe()
        return out


def run_experiment(
    data: PreparedData,
    model_config: EnergyHeadConfig,
    train_config: TrainConfig,
    output_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    baselines: bool = True,
    held_out: Sequence[str] = HELD_OUT_KINDS,
    trained: Sequence[str] = (),
    encoder: Any = None,
) -> Experiment:
    """Train, then evaluate on the validation theorems: progress and (with an embedding cache to encode the
    made-up siblings through) the sibling checks, beside baselines fitted on the training split
    (``baselines``; the structural features in both directions without). ``encoder`` encodes states the
    cache lacks (default: rebuilt from the identity where it can be)."""
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
    has_neg = bool(len(val)) and ((val["label"] == "negative").to_numpy() & ~made_up_mask(val)).any()  # mined ones
    fitted = _fit_baselines(data.train_records) if baselines else None
    texts = val["state_pp"].tolist()
    position = _position(val, data.cache) if has_gt or has_neg else {}
    report = checks = None
    if has_gt:
        given = fitted.energies(texts) if fitted is not None else None
        report = progress_evaluation(val, energies, baselines=given, trivial=fitted.trivial_names if fitted else None,
                                     unfitted=position, seed=train_config.seed)
        encoder = encoder if encoder is not None else _rebuilt(data.identity)
        if data.cache is not None and encoder is not None:
            checks = sibling_checks(EnergyScorer(model, meta, encoder=encoder, cache=data.cache), val, fitted,
                                    held_out=held_out, trained=trained, seed=train_config.seed)
        else:
            log.warning("sibling checks skipped: the made-up siblings need encoding, and no encoder is given "
                        "(--encode) or rebuilt from the identity %s", getattr(data.identity, "model", data.identity))
    mined = None
    if has_neg:
        pairs = mined_sibling_pairs(val)
        if not pairs.pairs.empty:
            rivals = fitted.energies(texts) if fitted is not None else both_directions(texts)
            mined = pair_checks(pairs, {MODEL: energies, **rivals, **position}, model=MODEL, seed=train_config.seed)
    exp = Experiment(
        result=result, model=model, val_energies=energies, val_pos_energies=pos_e, val_neg_energies=neg_e,
        progress=report, siblings=sibling_report(val, energies) if has_neg else None,
        simulated=data.simulated, checks=checks, baselines=fitted, mined=mined,
    )
    summary = exp.summary()
    summary.update({"model": model_config.to_dict(), "train": train_config.to_dict(), "missing_embeddings": asdict(data.missing)})
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    for report in (exp.checks, exp.mined, exp.siblings, exp.progress):  # sibling checks first: the headlines
        if report is not None:
            log.info("%s", report.verdict)
    return exp


def _rebuilt(identity: Any) -> Any:
    from workbench.encode import EncodeError
    from workbench.encode.factory import encoder_from_identity

    try:
        return encoder_from_identity(identity_to_dict(identity))
    except (EncodeError, ValueError):
        return None


def _position(records: pd.DataFrame, cache: Path | str | None) -> dict[str, np.ndarray]:
    """The position cue (nothing fitted) for every record, as a state of its theorem."""
    return {POSITION: position_energies(records["state_pp"].astype(str).tolist(),
                                        records["theorem_name"].astype(str).tolist(), first_states(records),
                                        table=cached_table(cache))}


def _fit_baselines(train_records: pd.DataFrame) -> FittedBaselines | None:
    try:
        return fit_baselines(train_records)
    except ValueError as e:  # e.g. a tiny split with no training pair
        log.warning("no fitted baselines: %s", e)
        return None


def sibling_checks(scorer: EnergyScorer, records: pd.DataFrame, baselines: FittedBaselines | None, *,
                   held_out: Sequence[str] = HELD_OUT_KINDS, trained: Sequence[str] = (), seed: int = 0,
                   progress: bool = False) -> CheckReport | None:
    """The sibling checks (``ebm.checks``) of ``records``' ground-truth paths: the model through ``scorer``
    (the one scoring path), beside the baselines (fitted ones, else each feature in both directions)."""
    pairs = check_pairs(records, held_out=held_out, trained=trained, seed=seed, table=cached_table(scorer.cache))
    if pairs.pairs.empty:
        return None
    energies = {MODEL: scorer.energies_of_states(pairs.texts, progress=progress).astype(np.float64)}
    energies.update(baselines.energies(pairs.texts) if baselines is not None else both_directions(pairs.texts))
    energies[POSITION] = pairs.position
    report = pair_checks(pairs, energies, model=MODEL, seed=seed)
    log.info("sibling checks (model): %s", "; ".join(f"{c} {report.value(c):.3f}" for c in pairs.order[:4]
                                                      if (c, MODEL) in report.table.index))
    return report


# -- one run from EbmSettings (train-ebm and notebook 04) ---------------------------------------------
def load_inputs(settings: EbmSettings, *, resume: bool = False) -> tuple[pd.DataFrame, Any]:
    """(records, embedding table) for the settings' traces/trajectories (plus the made-up no-progress siblings),
    encoding missing states; with ``finetune_encoder``, first tune the encoder on the training split (kept on
    ``resume`` when the tuned folder is there)."""
    records = load_records(list(settings.trajectories), settings.traces, num_theorems=settings.num_theorems, seed=settings.seed)
    return inputs_from_records(settings, records, resume=resume)


def inputs_from_records(settings: EbmSettings, records: pd.DataFrame, *, resume: bool = False) -> tuple[pd.DataFrame, Any]:
    """``load_inputs`` after the loading: add the made-up siblings, tune the encoder if asked, encode."""
    records = with_perturbations(records, settings.perturbations, seed=settings.seed, both_sides=settings.perturb_children)
    tuned = settings.finetuned_encoder_dir()
    if settings.finetune_encoder and not (resume and (tuned / FINETUNED_META).is_file()):
        train_part, _ = split_by_theorem(records, settings.val_fraction, settings.seed)  # the head's training split
        finetune_encoder(settings.finetune_base(), train_part, tuned, settings.finetune_config(),
                         template=settings.template_text(), progress=settings.progress)
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
    encoder = settings.encoder() if settings.encode else None
    exp = run_experiment(data, settings.model_config(data.identity.dim), settings.train_config(), out,
                         resume=resume, progress=settings.progress, baselines=settings.fitted_baselines,
                         held_out=settings.held_out_perturbations, trained=settings.perturbations, encoder=encoder)
    checkpoint = exp.result.best_dir if (exp.result.best_dir / "config.json").exists() else exp.result.last_dir
    evaluations = {str(path): evaluate_traces(checkpoint, path, output_dir=out, cache=settings.embeddings_path(),
                                              encoder=encoder, seed=settings.seed, progress=settings.progress,
                                              baselines=exp.baselines, held_out=settings.held_out_perturbations,
                                              trained=settings.perturbations)
                   for path in settings.eval_traces}
    return replace(exp, evaluations=evaluations)


@dataclass(frozen=True)
class TraceEvaluation:
    progress: ProgressReport
    checks: CheckReport | None
    path: Path  # the eval_<stem>.json written


def evaluate_traces(checkpoint: str | Path, traces: str | Path, *, output_dir: str | Path, cache: str | Path | None = None,
                    encoder: Any = None, seed: int = 0, progress: bool = False, baselines: FittedBaselines | None = None,
                    held_out: Sequence[str] = HELD_OUT_KINDS, trained: Sequence[str] = ()) -> TraceEvaluation:
    """Evaluate a trained head on another LeanDojo file (any split, any Mathlib commit) and write
    ``eval_<file stem>.json`` to ``output_dir``: per-theorem progress accuracy and the sibling checks (the
    kinds ``held_out`` were never trained on, ``trained`` were), model beside baselines (``baselines``
    fitted on the training split; without them each structural feature in both directions), intervals."""
    return evaluate_records(checkpoint, load_records(traces=traces), name=Path(traces).stem, source=str(traces),
                            output_dir=output_dir, cache=cache, encoder=encoder, seed=seed, progress=progress,
                            baselines=baselines, held_out=held_out, trained=trained)


def evaluate_records(checkpoint: str | Path, records: pd.DataFrame, *, name: str, source: str, output_dir: str | Path,
                     cache: str | Path | None = None, encoder: Any = None, seed: int = 0, progress: bool = False,
                     baselines: FittedBaselines | None = None, held_out: Sequence[str] = HELD_OUT_KINDS,
                     trained: Sequence[str] = ()) -> TraceEvaluation:
    """``evaluate_traces`` on records already loaded (e.g. a selection split carved from a file); writes
    ``eval_<name>.json``."""
    scorer = EnergyScorer.from_checkpoint(checkpoint, encoder=encoder, cache=cache)
    energies = scorer.energies_of_states(records["state_pp"].tolist(), progress=progress).astype(np.float64)
    given = baselines.energies(records["state_pp"].tolist()) if baselines is not None else None
    report = progress_evaluation(records, energies, baselines=given, trivial=baselines.trivial_names if baselines else None,
                                 unfitted=_position(records, scorer.cache), seed=seed)
    checks = None
    if scorer.encoder is not None or _rebuilt(scorer.identity) is not None:
        checks = sibling_checks(scorer, records, baselines, held_out=held_out, trained=trained, seed=seed, progress=progress)
    else:
        log.warning("sibling checks skipped: the made-up siblings need encoding, and no encoder is given for %s",
                    scorer.identity.get("model"))
    path = Path(output_dir) / f"eval_{name}.json"
    payload = {"traces": source, "checkpoint": str(checkpoint), "encoder_identity": scorer.identity,
               "features": list(scorer.features), **report.to_dict(),
               "sibling_checks": checks.to_dict() if checks is not None else None,
               "baselines": baselines.describe() if baselines is not None else None}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    log.info("%s: %s%s", path, f"{checks.verdict}\n" if checks is not None else "", report.verdict)
    return TraceEvaluation(report, checks, path)
