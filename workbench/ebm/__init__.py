"""Energy-based value model: energy head, contrastive sampler, losses, trainer, evaluation.

Lower energy = more provable; ``score = -energy``. Modules:
  settings.py    EbmSettings: every knob, one set of defaults (train-ebm flags, notebook 04)
  features.py    structural features of a state (baselines, optional extra inputs)
  model.py       EnergyHeadConfig, EnergyHead (pure torch)
  data.py        attach_embeddings, split_by_theorem, SamplerConfig, ContrastiveSampler, records_from_traces
  losses.py      ranknet, info_nce, margin_ranking, depth_regression, contrastive_loss
  metrics.py     contrastive_metrics, auroc, health_warnings
  train.py       TrainConfig, train (resumable; architecture pinned from the checkpoint)
  checkpoint.py  save_checkpoint, load_model, read_meta, EncoderMismatchError (atomic, identity-checked)
  scorer.py      EnergyScorer.score_states: the one scoring path from state text
  evaluate.py    progress_evaluation (intervals, baselines, verdict), sibling_report, record_energies
  pipeline.py    load_inputs, prepare_from_settings, train_from_settings, evaluate_traces
"""

from workbench.ebm.checkpoint import EncoderMismatchError, load_model, save_checkpoint
from workbench.ebm.data import ContrastiveSampler, SamplerConfig, attach_embeddings, records_from_traces, split_by_theorem
from workbench.ebm.model import EnergyHead, EnergyHeadConfig
from workbench.ebm.scorer import EnergyScorer
from workbench.ebm.train import TrainConfig, train

__all__ = [
    "ContrastiveSampler", "EncoderMismatchError", "EnergyHead", "EnergyHeadConfig", "EnergyScorer", "SamplerConfig",
    "TrainConfig", "attach_embeddings", "load_model", "records_from_traces", "save_checkpoint", "split_by_theorem", "train",
]
