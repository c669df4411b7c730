"""Energy-based value model: energy head, contrastive sampler, losses, trainer, evaluation.

Lower energy = more provable; ``score = -energy``. Modules:
  model.py       EnergyHeadConfig, EnergyHead (pure torch)
  data.py        attach_embeddings, split_by_theorem, SamplerConfig, ContrastiveSampler, records_from_traces
  losses.py      info_nce, margin_ranking, depth_regression, contrastive_loss
  metrics.py     contrastive_metrics, auroc, health_warnings
  train.py       TrainConfig, train (resumable)
  checkpoint.py  save_checkpoint, load_model, EnergyScorer, EncoderMismatchError
  evaluate.py    ground_truth_report, sibling_report, record_energies
  pipeline.py    load_records, ensure_embeddings, prepare, run_experiment (CLI / notebook 04)
"""

from workbench.ebm.checkpoint import EncoderMismatchError, EnergyScorer, load_model, save_checkpoint
from workbench.ebm.data import ContrastiveSampler, SamplerConfig, attach_embeddings, records_from_traces, split_by_theorem
from workbench.ebm.model import EnergyHead, EnergyHeadConfig
from workbench.ebm.train import TrainConfig, train

__all__ = [
    "ContrastiveSampler", "EncoderMismatchError", "EnergyHead", "EnergyHeadConfig", "EnergyScorer", "SamplerConfig",
    "TrainConfig", "attach_embeddings", "load_model", "records_from_traces", "save_checkpoint", "split_by_theorem", "train",
]
