"""A synthetic, linearly separable trajectory set with its embedding table.

For tests and benchmarks of the training path (it is not data about Lean): every theorem is a path
of positive states with negative siblings at each step; positive embeddings are shifted along one
hidden direction, negatives against it, and positives also move along a second direction with their
remaining depth. Records carry ``simulated = True``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True, slots=True)
class SyntheticIdentity:
    model: str = "synthetic"
    dim: int = 32
    pooling: str = "none"
    dtype: str = "float32"
    template: str = "{state}"


@dataclass(frozen=True, slots=True)
class SyntheticTable:
    states: list[str]
    matrix: np.ndarray  # float32 [n, d]
    identity: SyntheticIdentity


def make_synthetic(
    *,
    n_theorems: int = 40,
    steps: int = 4,
    siblings: int = 3,
    dim: int = 32,
    separation: float = 1.0,
    seed: int = 0,
) -> tuple[pd.DataFrame, SyntheticTable]:
    rng = np.random.default_rng(seed)
    direction = rng.standard_normal(dim)
    direction /= np.linalg.norm(direction)
    depth_dir = rng.standard_normal(dim)
    depth_dir -= depth_dir @ direction * direction
    depth_dir /= np.linalg.norm(depth_dir)
    rows, vectors = [], []
    for t in range(n_theorems):
        name = f"Synthetic.thm_{t}"
        sid = 0
        for depth in range(steps):
            parent = None if depth == 0 else depth - 1
            pos_id = depth
            text = f"x : ℕ\n⊢ {name} goal {depth}"
            vectors.append(rng.standard_normal(dim) + separation * direction + 0.3 * (steps - depth) * depth_dir)
            rows.append((name, pos_id, parent, text, "positive", depth, steps - depth, -0.5, "ground_truth"))
            if depth == 0:
                continue
            for j in range(siblings):
                sid_neg = steps + sid
                sid += 1
                vectors.append(rng.standard_normal(dim) - separation * direction)
                rows.append((name, sid_neg, parent, f"x : ℕ\n⊢ {name} wrong {depth}.{j}", "negative", depth, -1, -2.0, "divergent"))
    df = pd.DataFrame(rows, columns=[
        "theorem_name", "state_id", "parent_state_id", "state_pp", "label", "depth_from_root",
        "remaining_depth", "llm_log_prob", "record_kind",
    ])
    df["parent_state_id"] = df["parent_state_id"].astype("Int64")
    df["simulated"] = True
    table = SyntheticTable(
        states=df["state_pp"].tolist(),
        matrix=np.asarray(vectors, dtype=np.float32),
        identity=SyntheticIdentity(dim=dim),
    )
    return df, table
