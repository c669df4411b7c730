"""Reading mined outputs for analysis (notebook 03): tables and plots, no Lean, no policy.

Every function takes the frames of :func:`load_mined` and returns a DataFrame or a matplotlib
figure, so the notebook is a list of calls.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from workbench.htmltable import Html
from workbench.mining import summary as summary_rules
from workbench.mining.export import split_output
from workbench.mining.output import SUMMARY, existing_output, read_attempts, read_status_lines
from workbench.mining.progress import latency_scale
from workbench.trajectory import read_trajectories

__all__ = ["Mined", "load_mined", "input_paths", "depth_counts", "survival", "outcome_counts", "per_theorem_yields",
           "alternative_proofs", "gt_replay_failures", "gt_failure_examples", "start_and_step0", "lean_and_traces",
           "match_quality_by_step", "versions_met", "banner", "plan_table", "this_run_table", "plot_depth",
           "plot_survival", "plot_outcomes",
           "plot_yields", "plot_gt_failures"]

log = logging.getLogger(__name__)

NOTEBOOK02_ROOT = "runs/mine"  # notebook 02's default output root (relative to notebooks/)


@dataclass
class Mined:
    records: pd.DataFrame  # trajectory records (+ "run" column: the output folder)
    attempts: pd.DataFrame  # every tactic sent to Lean
    theorems: pd.DataFrame  # one status line per theorem
    summaries: dict[str, dict[str, Any]]  # output folder -> summary.json

    @property
    def simulated(self) -> bool:
        return bool(self.records["simulated"].fillna(False).any()) or any(
            s.get("simulated") for s in self.summaries.values())


def load_mined(paths: str | Path | Sequence[str | Path]) -> Mined:
    """One or more ``workbench mine`` output folders."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    recs, atts, lines, summaries = [], [], [], {}
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"mined output not found: {p}")
        recs.append(read_trajectories(p).assign(run=str(p)))
        atts.append(read_attempts(p).to_pandas().assign(run=str(p)))
        lines.append(pd.DataFrame(read_status_lines(p)).assign(run=str(p)))
        if (p / SUMMARY).exists():
            summaries[str(p)] = json.loads((p / SUMMARY).read_text())
    return Mined(pd.concat(recs, ignore_index=True), pd.concat(atts, ignore_index=True),
                 pd.concat(lines, ignore_index=True), summaries)


def input_paths(inputs: str | Path | Sequence[str | Path] | None, *, demo_if_missing: bool = False,
                env: Mapping[str, str] | None = None) -> list[str]:
    """Normalise the notebook's ``inputs`` (a path, a list, or a JSON list from the command line) and check
    that each one holds mining output: a missing or mistyped folder is an error naming it, never a silent
    substitute.

    ``None``: the folder notebook 02 mines into with its default parameters in this environment (``env``).
    ``demo_if_missing``: only when asked, run the quick offline SIMULATED mining into a first input that has
    no output yet (``None`` then means the offline simulated run's folder, never a simulated run under a
    Lean name).
    """
    if inputs is None:
        from workbench.mining.flags import settings_from_flags

        inputs = settings_from_flags({"lean": "auto"}, env=env or {}, output_root=NOTEBOOK02_ROOT).output
        if not existing_output(Path(inputs)) and demo_if_missing:
            inputs = settings_from_flags({"lean": "simulated"}, env={}, output_root=NOTEBOOK02_ROOT).output
    if isinstance(inputs, str) and inputs.strip().startswith("["):
        inputs = json.loads(inputs)
    paths = [str(inputs)] if isinstance(inputs, (str, Path)) else [str(p) for p in inputs]
    paths = [str(split_output(p)[0]) for p in paths]  # NAME.parquet (a --output) was mined into NAME.parquet.run
    if not paths:
        raise ValueError("no mined outputs given")
    if demo_if_missing:
        from workbench.mining.run import ensure_demo_output

        paths[0] = str(ensure_demo_output(paths[0]))
    missing = [p for p in paths if not existing_output(Path(p))]
    if missing:
        where = Path.cwd()
        raise FileNotFoundError(
            f"no mining output in {', '.join(missing)} (relative to {where}): check the path, or mine it first "
            f"(notebook 02 with output=..., or `workbench mine --output ...`); demo_if_missing=True runs the "
            f"quick offline SIMULATED mining there instead")
    return paths


def plan_table(plan: dict[str, Any]) -> Html:
    """What a mining run will use (:func:`workbench.mining.flags.describe_plan`), fallbacks in red at the top;
    the same as text on a terminal (``papermill --log-output``)."""
    from workbench.mining.flags import format_plan

    warn = "".join(f"<li>{escape(w)}</li>" for w in plan.get("warnings", []))
    rows = "".join(f"<tr><th style='text-align:left'>{escape(k)}</th><td style='text-align:left'>{escape(str(v))}</td></tr>"
                   for k, v in plan.items() if k != "warnings")
    head = (f'<div style="background:#b00020;color:white;padding:8px;font-weight:bold">Fallbacks in use:<ul>{warn}</ul></div>'
            if warn else "")
    return Html(f"{head}<table>{rows}</table>", format_plan(plan))


def banner(simulated: bool) -> Html:
    """A loud notice when labels come from the simulator (HTML in the notebook, a line on a terminal)."""
    if not simulated:
        return Html("<p>Labels from Lean (Pantograph).</p>", "Labels from Lean (Pantograph).")
    text = ("SIMULATED LABELS: this output was mined with the Lean simulator, not Lean. "
            "Use it to test the pipeline only; never train or report on it.")
    return Html('<div style="background:#b00020;color:white;padding:12px;font-size:1.3em;font-weight:bold">'
                f"{text}</div>", text)


def this_run_table(this_run: Mapping[str, Any], settings: Any) -> pd.DataFrame:
    """Notebook 02's "this run" numbers. With the simulator the throughput (theorems/h, tactics/s) is what
    the simulator's scaled latencies allowed, so its row names say so: it is no estimate for real Lean."""
    rows = dict(this_run)
    if settings.simulated:
        label = f" (SIMULATED Lean, latencies x {latency_scale(settings.simulator_args):g}: not a real-Lean rate)"
        rows = {(k + label if k in _THROUGHPUT else k): v for k, v in rows.items()}
    return pd.Series(rows, name="this run", dtype=object).to_frame()


_THROUGHPUT = ("theorems_per_hour", "tactics_per_s")


# --- tables --------------------------------------------------------------------------------------


def depth_counts(records: pd.DataFrame) -> pd.DataFrame:
    """Positives / negatives per tree depth (``depth_from_root``)."""
    table = (records.groupby(["depth_from_root", "label"]).size().unstack(fill_value=0)
             .reindex(columns=["positive", "negative"], fill_value=0))
    table.index.name = "depth"
    return table.rename(columns={"positive": "positives", "negative": "negatives"})


def survival(records: pd.DataFrame) -> pd.DataFrame:
    """Theorems with at least one negative deeper than d, for each d (d = 2 is the seed's measure)."""
    neg = records[records.label == "negative"]
    deepest = neg.groupby("theorem_name").depth_from_root.max()
    total = records.theorem_name.nunique()
    depths = range(0, int(deepest.max()) + 1 if len(deepest) else 1)
    return pd.DataFrame({"deeper_than": list(depths),
                         "theorems": [int((deepest > d).sum()) for d in depths],
                         "fraction": [float((deepest > d).sum()) / total if total else 0.0 for d in depths]})


def outcome_counts(attempts: pd.DataFrame) -> pd.DataFrame:
    """Tactic attempts by role and outcome."""
    return attempts.groupby(["role", "outcome"]).size().rename("attempts").reset_index()


def per_theorem_yields(records: pd.DataFrame) -> pd.DataFrame:
    table = records.groupby(["theorem_name", "label"]).size().unstack(fill_value=0)
    return table.reindex(columns=["positive", "negative"], fill_value=0).rename(
        columns={"positive": "positives", "negative": "negatives"})


def alternative_proofs(records: pd.DataFrame) -> pd.DataFrame:
    alt = records[records.record_kind == "alternative_proof"]
    # llm_log_prob holds what the policy scored with: a log-probability (SGLang) or a similarity (retrieval)
    return alt[["theorem_name", "depth_from_root", "tactic_applied", "llm_log_prob", "score_kind",
                "open_prefix"]].reset_index(drop=True)


def gt_replay_failures(attempts: pd.DataFrame) -> pd.DataFrame:
    """Ground-truth steps that failed as written, by Lean error kind, with what ``open ... in`` fixed.

    The interactive view of the namespace mismatch between LeanDojo and Pantograph's ``copyFrom``.
    """
    key = ["run", "theorem", "step"]
    plain = attempts[(attempts.role == "ground_truth") & (attempts.outcome == "ground_truth_failed")]
    retry = attempts[attempts.role == "ground_truth_open"][key + ["outcome"]].rename(columns={"outcome": "retry"})
    merged = plain.merge(retry, on=key, how="left")
    merged["fixed_by_open"] = merged.retry == "ground_truth"
    merged["error_kind"] = merged.error_kind.fillna("none")
    out = merged.groupby("error_kind").agg(failures=("step", "size"), fixed_by_open=("fixed_by_open", "sum"),
                                           at_step0=("step", lambda s: int((s == 0).sum())))
    out["still_failing"] = out.failures - out.fixed_by_open
    return out.sort_values("failures", ascending=False)


def start_and_step0(theorems: pd.DataFrame) -> pd.DataFrame:
    """Per theorem status line: how the walk reached the trace's first state (``intro`` setup) and what
    happened to ground-truth step 0 (replayed, or why not: binder_context / namespace / other / infra)."""
    if theorems.empty:
        return pd.DataFrame(columns=["start", "step0", "theorems"])
    start = theorems.get("start", pd.Series([None] * len(theorems))).map(
        lambda s: (s or {}).get("problem") or "matched" if isinstance(s, dict) else "not recorded")
    step0 = theorems.get("step0", pd.Series([None] * len(theorems))).fillna("not reached")
    return (pd.DataFrame({"start": start, "step0": step0}).value_counts().rename("theorems").reset_index()
            .sort_values("theorems", ascending=False, ignore_index=True))


def _status_lines(theorems: pd.DataFrame) -> list[dict[str, Any]]:
    """The status lines back from the frame (keys an older line lacks are absent, not NaN)."""
    return [{k: v for k, v in row.items() if not (isinstance(v, float) and v != v)}
            for row in theorems.to_dict("records")]


def lean_and_traces(theorems: pd.DataFrame) -> pd.DataFrame:
    """How Lean's states met the traces' (an older Lean printed them): theorems started, with Lean's binders,
    with dropped variables, how the start state compared with the trace's first state, unaligned ends by reason."""
    t = summary_rules.lean_and_traces(_status_lines(theorems))
    rows = {"started": t["theorems_started"], "with Lean's binders": t["started_with_lean_binders"],
            "with dropped variables": t["theorems_with_dropped_variables"],
            "dropped variables (in all)": t["dropped_variables"]}
    rows |= {f"start state: {k}": v for k, v in t["start_state"].items()}
    rows |= {f"unaligned: {k}": v for k, v in t["unaligned_by_reason"].items()}
    return pd.Series(rows, name="theorems", dtype="int64").to_frame()


def versions_met(summaries: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Per mined folder: which Lean printed the traces, which one answered, same / differ / unknown."""
    rows = {run: {k: (s.get("versions") or {}).get(k) for k in ("meet", "traces", "lean", "note")}
            for run, s in summaries.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=["meet", "traces", "lean", "note"])


def match_quality_by_step(theorems: pd.DataFrame) -> pd.DataFrame:
    """Aligned steps by step index (rows; step 0 is the start state) and how their goal was found (columns):
    exact text, text after normalising known printer differences, fuzzy, none."""
    t = summary_rules.lean_and_traces(_status_lines(theorems))
    table = pd.DataFrame.from_dict(t["quality_by_step"], orient="index",
                                   columns=["exact", "normalised", "fuzzy", "none"]).fillna(0).astype("int64")
    table.index.name = "step"
    return table


def gt_failure_examples(attempts: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    plain = attempts[(attempts.role == "ground_truth") & (attempts.outcome == "ground_truth_failed")]
    return plain[["theorem", "step", "tactic", "error_kind", "messages"]].head(n).reset_index(drop=True)


# --- plots ---------------------------------------------------------------------------------------


def _axes(title: str, figsize: tuple[float, float] = (7, 3.5)) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    ax.set_title(title)
    return fig, ax


def _readable_bars(ax: Any, values: Sequence[float], *, horizontal: bool) -> None:
    """Each bar labelled with its count, and a log axis when the counts span more than 50x, so a bar of 1
    next to one of 1,400 is still seen (and no stacked segment hides in a log scale: callers group bars)."""
    positive = [float(v) for v in values if v > 0]
    if positive and max(positive) / min(positive) > 50:
        (ax.set_xscale if horizontal else ax.set_yscale)("log")
        (ax.set_xlabel if horizontal else ax.set_ylabel)(((ax.get_xlabel() if horizontal else ax.get_ylabel())
                                                         + " (log scale)").strip())
    for container in ax.containers:
        ax.bar_label(container, labels=[f"{v:,.0f}" if v > 0 else "" for v in container.datavalues],
                     fontsize=7, padding=2)
    (ax.margins(x=0.12) if horizontal else ax.margins(y=0.12))  # room for the labels


def _legend_outside(ax: Any) -> None:
    """The legend right of the plot, never over a bar or a line."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)


def plot_depth(records: pd.DataFrame) -> Any:
    fig, ax = _axes("positives / negatives per tree depth")
    table = depth_counts(records)
    table.plot.bar(ax=ax, color=["tab:green", "tab:red"], rot=0)
    ax.set_xlabel("depth_from_root")
    ax.set_ylabel("records")
    _readable_bars(ax, table.to_numpy().ravel(), horizontal=False)
    _legend_outside(ax)
    fig.tight_layout()
    return fig


def plot_survival(records: pd.DataFrame) -> Any:
    fig, ax = _axes("theorems with a negative deeper than d")
    s = survival(records)
    ax.step(s.deeper_than, s.theorems, where="post")
    ax.axvline(2, ls="--", color="grey")
    ax.set_xlabel("d")
    ax.set_ylabel("theorems")
    fig.tight_layout()
    return fig


def plot_outcomes(attempts: pd.DataFrame) -> Any:
    """Candidate outcomes by role, side by side (not stacked: counts span 1 to thousands, see _readable_bars)."""
    fig, ax = _axes("candidate outcomes", figsize=(8, 3.8))
    c = attempts[attempts.role.isin(["candidate", "chain"])].groupby(["outcome", "role"]).size().unstack(fill_value=0)
    c.plot.barh(ax=ax)
    ax.set_xlabel("attempts")
    _readable_bars(ax, c.to_numpy().ravel(), horizontal=True)
    _legend_outside(ax)
    fig.tight_layout()
    return fig


def plot_yields(records: pd.DataFrame) -> Any:
    from matplotlib.ticker import MaxNLocator

    fig, ax = _axes("per-theorem yield")
    y = per_theorem_yields(records)
    ax.hist([y.positives, y.negatives], bins=range(0, int(max(y.max().max(), 1)) + 2), label=["positives", "negatives"],
            color=["tab:green", "tab:red"])
    ax.set_xlabel("records per theorem")
    ax.set_ylabel("theorems")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no fractional ticks
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _legend_outside(ax)
    fig.tight_layout()
    return fig


def plot_gt_failures(attempts: pd.DataFrame) -> Any:
    """Bars per error kind (fixed by ``open … in`` / still failing); None when there are fewer than two kinds
    (the table says it all)."""
    t = gt_replay_failures(attempts)
    if len(t) < 2:
        return None
    fig, ax = _axes("ground-truth replay failures by Lean error kind")
    t[["fixed_by_open", "still_failing"]].plot.barh(ax=ax, color=["tab:blue", "tab:gray"])
    ax.set_xlabel("ground-truth steps")
    _readable_bars(ax, t[["fixed_by_open", "still_failing"]].to_numpy().ravel(), horizontal=True)
    _legend_outside(ax)
    fig.tight_layout()
    return fig
