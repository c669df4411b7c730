"""Which training/evaluation records are which: ground-truth proof states, made-up siblings. Pure pandas masks,
one definition for the sampler, the checks, the baselines and the evaluations."""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.ebm.perturb import RECORD_KIND_PREFIX


def ground_truth_mask(records: pd.DataFrame) -> np.ndarray:
    """Records on a ground-truth proof path with a known remaining depth (never a made-up sibling)."""
    keep = (records["remaining_depth"].fillna(-1).to_numpy() >= 0) & (records["label"].astype(str).to_numpy() == "positive")
    if "record_kind" in records.columns and records["record_kind"].notna().any():
        keep &= (records["record_kind"] == "ground_truth").to_numpy()
    return keep


def made_up_mask(records: pd.DataFrame) -> np.ndarray:
    """Made-up no-progress siblings (``ebm.data.with_perturbations``: ``record_kind`` ``perturbation:<kind>``)."""
    if "record_kind" not in records.columns:
        return np.zeros(len(records), bool)
    return records["record_kind"].astype(str).str.startswith(RECORD_KIND_PREFIX).to_numpy()


__all__ = ["ground_truth_mask", "made_up_mask"]
