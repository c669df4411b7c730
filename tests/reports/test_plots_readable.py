"""The reports' figures are readable (issue 24, item 6): no invisible bars when counts span 1 to thousands,
legends off the lines, loss curves of switched-off terms dropped."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from workbench.ebm.plots import plot_accuracy_by_depth, plot_training_curves  # noqa: E402
from workbench.mining.report import plot_depth, plot_outcomes  # noqa: E402


def _legend_right_of_axes(fig, ax) -> bool:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend()
    return legend is not None and legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1


def _attempts(counts: dict[tuple[str, str], int]) -> pd.DataFrame:
    rows = [{"role": role, "outcome": outcome} for (role, outcome), n in counts.items() for _ in range(n)]
    return pd.DataFrame(rows)


def test_bars_spanning_1_to_1400_get_a_log_axis_and_a_label_each():
    fig = plot_outcomes(_attempts({("candidate", "error"): 1400, ("candidate", "divergent"): 37,
                                   ("candidate", "complete"): 1, ("chain", "error"): 3}))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and "log scale" in ax.get_xlabel()
    labels = [t.get_text() for t in ax.texts]
    assert {"1,400", "37", "1", "3"} <= set(labels)  # the bar of 1 is labelled, not a sliver
    assert _legend_right_of_axes(fig, ax)
    plt.close(fig)


def test_bars_of_similar_counts_stay_linear_but_labelled():
    records = pd.DataFrame({"depth_from_root": [0, 0, 1, 1, 1], "label": ["positive", "negative"] * 2 + ["negative"],
                            "theorem_name": ["a"] * 5})
    fig = plot_depth(records)
    ax = fig.axes[0]
    assert ax.get_yscale() == "linear"
    assert [t.get_text() for t in ax.texts if t.get_text()]  # counts written on the bars
    assert _legend_right_of_axes(fig, ax)
    plt.close(fig)


def test_training_curves_drop_flat_zero_terms_and_keep_legends_off_the_lines():
    history = [{"step": s, "train_loss": 1.0 / (s + 1), "val_loss": 1.2 / (s + 1), "train_loss_contrastive": 1.0 / (s + 1),
                "train_loss_depth": 0.0, "val_loss_depth": 0.0, "val_rank_acc": 0.5 + s / 100} for s in range(10)]
    fig = plot_training_curves(history)
    ax_loss, ax_acc = fig.axes[:2]
    drawn = {line.get_label() for line in ax_loss.lines}
    assert drawn == {"train_loss", "val_loss", "train_loss_contrastive"}  # the depth term is off (weight 0)
    assert {line.get_label() for line in ax_acc.lines} == {"val_rank_acc"}
    assert _legend_right_of_axes(fig, ax_loss) and _legend_right_of_axes(fig, ax_acc)
    plt.close(fig)


def test_accuracy_by_depth_legend_is_outside():
    by_depth = pd.DataFrame({"model": [0.6, 0.7, 0.8], "state length": [0.5, 0.55, 0.6]}, index=[1, 2, 3])
    fig = plot_accuracy_by_depth(by_depth, title="t")
    assert _legend_right_of_axes(fig, fig.axes[0])
    plt.close(fig)
