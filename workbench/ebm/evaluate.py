"""Held-out evaluation of an energy head, always next to baselines.

Mined data (siblings = children of one parent state):
  rank-1 among siblings: is the lowest-energy child a positive? Energy vs the LLM log-probability
  (highest first) vs random (expected n_pos / n); pairwise accuracy; AUROC; all by depth.
Ground-truth paths (no Lean needed):
  progress accuracy: a later state of one proof gets lower energy than an earlier one (all pairs, and
  adjacent steps only); Spearman of energy with remaining depth; baselines: state length, number of
  goals, random. The verdict says plainly whether the model beats the best baseline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from workbench.ebm.metrics import auroc
from workbench.ebm.model import EnergyHead
from workbench.ebm.train import as_tensor

log = logging.getLogger(__name__)


@torch.no_grad()
def record_energies(model: EnergyHead, records: pd.DataFrame, embeddings: np.ndarray, *, batch_size: int = 4096) -> np.ndarray:
    """Energies [n_records] for records carrying ``emb_row`` (eval mode)."""
    was_training = model.training
    model.eval()
    rows = np.array(records["emb_row"], dtype=np.int64)  # a writable copy for torch
    emb = as_tensor(embeddings).to(next(model.parameters()).device)
    out = [model(emb[torch.from_numpy(rows[i : i + batch_size])]) for i in range(0, rows.size, batch_size)]
    model.train(was_training)
    return torch.cat(out).cpu().numpy().astype(np.float64) if out else np.empty(0)


def _num_goals(states: pd.Series) -> np.ndarray:
    from workbench.states import count_goals

    def count(text: str) -> int:
        try:
            return count_goals(text)
        except ValueError:  # not parseable as a Lean state: count the turnstiles
            return text.count("⊢")

    return np.array([count(s) for s in states], dtype=np.float64)


# -- ground-truth paths ---------------------------------------------------------------------------
def _progress(theorem: np.ndarray, depth: np.ndarray, energy: np.ndarray) -> tuple[float, float, int]:
    """(all-pairs progress accuracy, adjacent-step progress accuracy, number of pairs); ties half."""
    correct = total = adj_correct = adj_total = 0.0
    order = np.lexsort((depth, theorem))
    theorem, depth, energy = theorem[order], depth[order], energy[order]
    bounds = np.flatnonzero(np.r_[True, theorem[1:] != theorem[:-1], True])
    for a, b in zip(bounds[:-1], bounds[1:]):
        d, e = depth[a:b], energy[a:b]
        later = d[None, :] > d[:, None]  # [i, j]: state j is later on the proof than state i
        win = (e[None, :] < e[:, None]) + 0.5 * (e[None, :] == e[:, None])
        correct += float(win[later].sum())
        total += float(later.sum())
        adjacent = d[None, :] == d[:, None] + 1
        adj_correct += float(win[adjacent].sum())
        adj_total += float(adjacent.sum())
    nan = float("nan")
    return (correct / total if total else nan, adj_correct / adj_total if adj_total else nan, int(total))


def _adjacent_by_depth(theorem: np.ndarray, depth: np.ndarray, energy: np.ndarray) -> pd.Series:
    """Share of steps d -> d + 1 whose later state has lower energy, by d (ties half)."""
    df = pd.DataFrame({"t": theorem, "d": depth, "e": energy}).sort_values(["t", "d"])
    nxt = df.groupby("t")["e"].shift(-1)
    nxt_d = df.groupby("t")["d"].shift(-1)
    ok = nxt_d == df["d"] + 1
    win = (nxt < df["e"]).astype(float) + 0.5 * (nxt == df["e"]).astype(float)
    return win[ok].groupby(df.loc[ok, "d"]).mean()


@dataclass(frozen=True, slots=True)
class ProgressReport:
    table: pd.DataFrame  # one row per method: progress_acc, progress_acc_adjacent, spearman
    by_depth: pd.DataFrame  # adjacent-step progress accuracy from depth d to d + 1, one column per method
    n_theorems: int
    n_states: int
    n_pairs: int
    best_baseline: str
    beats_best_baseline: bool
    verdict: str


def ground_truth_report(records: pd.DataFrame, energies: np.ndarray, *, seed: int = 0) -> ProgressReport:
    """Progress accuracy and Spearman(energy, remaining depth) on ground-truth path states."""
    keep = (records["remaining_depth"].to_numpy() >= 0) & (records["label"].to_numpy() == "positive")
    if "record_kind" in records.columns and records["record_kind"].notna().any():
        keep &= (records["record_kind"] == "ground_truth").to_numpy()
    gt = records.loc[keep]
    theorem = pd.factorize(gt["theorem_name"])[0]
    depth = gt["depth_from_root"].to_numpy(np.int64)
    remaining = gt["remaining_depth"].to_numpy(np.float64)
    length, goals = gt["state_pp"].str.len().to_numpy(np.float64), _num_goals(gt["state_pp"])
    # Each heuristic in both directions: which one tracks progress is an empirical question (proofs
    # often add hypotheses as they go, so later states can be longer).
    methods = {
        "energy (model)": np.asarray(energies, np.float64)[keep],
        "state length (shorter = closer)": length,
        "state length (longer = closer)": -length,
        "number of goals (fewer = closer)": goals,
        "number of goals (more = closer)": -goals,
        "random": np.random.default_rng(seed).random(len(gt)),
    }
    rows, n_pairs, steps = [], 0, []
    for name, e in methods.items():
        steps.append(_adjacent_by_depth(theorem, depth, e).rename(name))
        acc, adj, n_pairs = _progress(theorem, depth, e)
        rho = spearmanr(e, remaining).statistic if len(gt) > 2 and np.ptp(e) > 0 else float("nan")
        rows.append({"method": name, "progress_acc": acc, "progress_acc_adjacent": adj, "spearman": float(rho)})
    table = pd.DataFrame(rows).set_index("method")
    by_depth = pd.concat(steps, axis=1)
    by_depth.index.name = "depth"
    baselines = table.drop(index="energy (model)")
    best = str(baselines["progress_acc"].idxmax()) if baselines["progress_acc"].notna().any() else "random"
    model_acc = table.loc["energy (model)", "progress_acc"]
    best_acc = table.loc[best, "progress_acc"]
    beats = bool(model_acc > best_acc)
    verdict = (
        f"Progress accuracy on {gt['theorem_name'].nunique()} held-out theorems ({n_pairs} state pairs): "
        f"model {model_acc:.3f} vs best baseline '{best}' {best_acc:.3f} -- the model "
        + ("BEATS the best baseline." if beats else "does NOT beat the best baseline.")
        + f" Spearman with remaining depth: model {table.loc['energy (model)', 'spearman']:.3f}, "
        f"'{best}' {table.loc[best, 'spearman']:.3f}."
    )
    return ProgressReport(table, by_depth, int(gt["theorem_name"].nunique()), len(gt), n_pairs, best, beats, verdict)


# -- mined siblings -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SiblingReport:
    summary: pd.DataFrame  # rows: energy / llm_log_prob / random; columns: rank1, pairwise_acc, auroc
    by_depth: pd.DataFrame  # per depth_from_root of the children: groups, rank1_* , pairwise_*
    n_groups: int
    verdict: str


def sibling_report(records: pd.DataFrame, energies: np.ndarray) -> SiblingReport:
    """Rank-1 among siblings (children of one parent holding >= 1 positive and >= 1 negative)."""
    df = pd.DataFrame({
        "theorem": records["theorem_name"].to_numpy(),
        "parent": records["parent_state_id"].to_numpy(),
        "label": records["label"].to_numpy(),
        "depth": records["depth_from_root"].fillna(-1).to_numpy(np.int64) if "depth_from_root" in records else -1,
        "energy": np.asarray(energies, np.float64),
        "llm": records["llm_log_prob"].to_numpy(np.float64) if "llm_log_prob" in records else np.nan,
    })
    policy = "llm log-prob"
    if "score_kind" in records.columns and records["score_kind"].notna().any():
        kinds = records["score_kind"].fillna("none").to_numpy()
        df.loc[kinds == "none", "llm"] = np.nan  # no policy score recorded
        seen = sorted(set(kinds) - {"none"})
        if seen and seen != ["logprob"]:
            policy = f"policy score ({'/'.join(seen)})"  # e.g. the retrieval policy's similarity
    df = df[df["label"].isin(["positive", "negative"]) & df["parent"].notna()]
    per_group = []
    for (_, _), g in df.groupby(["theorem", "parent"], sort=False):
        is_pos = (g["label"] == "positive").to_numpy()
        if is_pos.all() or not is_pos.any():
            continue
        e, llm = g["energy"].to_numpy(), g["llm"].to_numpy()
        diff_e = e[~is_pos][None, :] - e[is_pos][:, None]  # > 0: positive below negative
        row = {
            "depth": int(g["depth"].iloc[0]),
            "rank1_energy": float(is_pos[np.argmin(e)]),
            "rank1_random": float(is_pos.mean()),
            "pairwise_energy": float(((diff_e > 0) + 0.5 * (diff_e == 0)).mean()),
        }
        if np.isfinite(llm).all():
            diff_l = llm[is_pos][:, None] - llm[~is_pos][None, :]  # > 0: positive more likely
            row["rank1_llm"] = float(is_pos[np.argmax(llm)])
            row["pairwise_llm"] = float(((diff_l > 0) + 0.5 * (diff_l == 0)).mean())
        else:
            row["rank1_llm"] = row["pairwise_llm"] = float("nan")
        per_group.append(row)
    groups = pd.DataFrame(per_group, columns=["depth", "rank1_energy", "rank1_llm", "rank1_random", "pairwise_energy", "pairwise_llm"])
    pos, neg = df["label"] == "positive", df["label"] == "negative"
    summary = pd.DataFrame({
        "rank1": [groups["rank1_energy"].mean(), groups["rank1_llm"].mean(), groups["rank1_random"].mean()],
        "pairwise_acc": [groups["pairwise_energy"].mean(), groups["pairwise_llm"].mean(), 0.5],
        "auroc": [auroc(-df.loc[pos, "energy"], -df.loc[neg, "energy"]), auroc(df.loc[pos, "llm"].dropna(), df.loc[neg, "llm"].dropna()), 0.5],
    }, index=pd.Index(["energy (model)", policy, "random"], name="method"))
    by_depth = groups.groupby("depth").agg(
        groups=("rank1_energy", "size"), rank1_energy=("rank1_energy", "mean"), rank1_llm=("rank1_llm", "mean"),
        rank1_random=("rank1_random", "mean"), pairwise_energy=("pairwise_energy", "mean"), pairwise_llm=("pairwise_llm", "mean"),
    )
    if groups.empty:
        verdict = "No sibling group holds both a positive and a negative: rank-1 among siblings cannot be measured."
    else:
        r = summary["rank1"]
        rivals = r.drop(index="energy (model)").dropna()
        best = str(rivals.idxmax())
        beats = r["energy (model)"] > rivals.max()
        verdict = (
            f"Rank-1 among siblings over {len(groups)} groups: model {r['energy (model)']:.3f}, "
            f"{policy} {r[policy]:.3f}, random {r['random']:.3f} -- the model "
            + ("BEATS" if beats else "does NOT beat") + f" the best alternative ('{best}')."
        )
    return SiblingReport(summary, by_depth, len(groups), verdict)
