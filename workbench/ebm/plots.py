"""Figures for notebook 04 (matplotlib; each function returns its Figure, nothing is shown or saved)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from workbench.ebm.checks import CheckReport
from workbench.traces import bundled_sample_path


def simulated_banner(simulated: bool, traces: str | None = None) -> str:
    """Markdown shouted at the top of a report when the training data came from the simulator; otherwise
    one line naming where it came from (the bundled sample is hand-written, never checked by Lean)."""
    if not simulated:
        if traces is not None and Path(traces).resolve() == bundled_sample_path().resolve():
            return ("Training data: the **bundled sample** (hand-written in the LeanDojo format, never checked "
                    "by Lean; its theorem names do not exist in Mathlib). Not simulated, but not real traces either.")
        return f"Training data: not simulated (LeanDojo traces: {Path(traces).name if traces else 'none'})."
    return (
        "# ⚠️ SIMULATED TRAINING DATA ⚠️\n\n**These trajectories come from the Lean simulator, not from "
        "Lean. Nothing below measures how well the model judges real proof states.**"
    )


def _legend_outside(ax) -> None:
    """The legend right of the axes, never over a line."""
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _has_signal(values: pd.Series) -> bool:
    """False for a curve that is all zero or missing (a loss term that is switched off, e.g. depth at weight 0)."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    return bool(len(v)) and bool((v.abs() > 0).any())


def plot_training_curves(history: Sequence[dict[str, float]]) -> Figure:
    h = pd.DataFrame(list(history))
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 3.8))
    for col, style in (("train_loss", "-"), ("val_loss", "-"), ("train_loss_contrastive", ":"), ("val_loss_contrastive", ":"),
                       ("train_loss_depth", "--"), ("val_loss_depth", "--")):
        if col in h and _has_signal(h[col]):
            ax_loss.plot(h["step"], h[col], style, label=col)
    ax_loss.set(xlabel="step", ylabel="loss", title="loss")
    _legend_outside(ax_loss)
    for col in ("val_rank_acc", "val_pairwise_acc", "val_auroc", "train_rank_acc"):
        if col in h and _has_signal(h[col]):
            ax_acc.plot(h["step"], h[col], label=col)
    ax_acc.set(xlabel="step", ylabel="accuracy", title="contrastive accuracy", ylim=(0, 1.02))
    _legend_outside(ax_acc)
    fig.tight_layout()
    return fig


def plot_energy_histograms(e_pos: np.ndarray, e_neg: np.ndarray, *, title: str = "validation energies") -> Figure:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    both = np.concatenate([np.ravel(e_pos), np.ravel(e_neg)]) if len(e_pos) or len(e_neg) else np.zeros(1)
    bins = np.linspace(both.min(), both.max() + 1e-9, 40)
    ax.hist(np.ravel(e_neg), bins=bins, alpha=0.6, density=True, label=f"negatives ({np.size(e_neg)})")
    ax.hist(np.ravel(e_pos), bins=bins, alpha=0.6, density=True, label=f"positives ({np.size(e_pos)})")
    ax.set(xlabel="energy (lower = more provable)", ylabel="density", title=title)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_accuracy_by_depth(by_depth: pd.DataFrame, *, title: str, ylabel: str = "accuracy", xlabel: str = "depth") -> Figure:
    """One line per column of a by-depth (or by-distance) table (model next to baselines)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for col in by_depth.columns:
        if col in ("groups", "pairs"):
            continue
        ax.plot(by_depth.index, by_depth[col], marker="o", label=col)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, ylim=(-0.02, 1.02))
    if pd.api.types.is_numeric_dtype(by_depth.index):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _legend_outside(ax)
    fig.tight_layout()
    return fig


def plot_baselines(table: pd.DataFrame, *, title: str, metric: str = "progress_accuracy") -> Figure:
    """One horizontal bar per method (model first) with its 95 % interval (``metric``_lo/_hi columns)."""
    t = table.iloc[::-1]
    err = np.vstack([t[metric] - t[metric + "_lo"], t[metric + "_hi"] - t[metric]])
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(t) + 1.2))
    colors = ["tab:red" if i == len(t) - 1 else "tab:blue" for i in range(len(t))]
    ax.barh(list(map(str, t.index)), t[metric], xerr=err, color=colors, capsize=3)
    ax.axvline(0.5, color="grey", lw=0.8, ls=":")
    ax.set(title=title, xlabel=metric.replace("_", " ") + " (95 % interval)", xlim=(0, 1))
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    return fig


def plot_checks(report: CheckReport, *, title: str = "sibling checks", checks: Sequence[str] | None = None) -> Figure:
    """Grouped horizontal bars: one group per check (``ebm.checks.CheckReport``), one bar per method, 95 % intervals."""
    t = report.table
    order = list(dict.fromkeys(c for c, _ in t.index)) if checks is None else [c for c in checks if c in t.index.get_level_values(0)]
    methods = list(dict.fromkeys(m for _, m in t.index))
    fig, ax = plt.subplots(figsize=(10, 0.22 * len(order) * len(methods) + 1.5))  # room for the legend at the right
    height = 0.8 / len(methods)
    for j, method in enumerate(methods):
        rows = [t.loc[(c, method)] if (c, method) in t.index else None for c in order]
        y = np.arange(len(order)) + j * height
        v = np.array([np.nan if r is None else r["value"] for r in rows])
        err = np.array([[0, 0] if r is None else [r["value"] - r["lo"], r["hi"] - r["value"]] for r in rows]).T
        ax.barh(y, v, height=height, xerr=err, capsize=2, label=method,
                color="tab:red" if method == report.model else None)
    ax.set_yticks(np.arange(len(order)) + 0.4 - height / 2, order, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0.5, color="grey", lw=0.8, ls=":")
    ax.set(title=title, xlabel="pair accuracy, mean over theorems (95 % interval)", xlim=(0, 1))
    _legend_outside(ax)
    fig.tight_layout()
    return fig
