"""Mining runs: the driver. Select theorems, start an executor, write every result, summarise.

``await mine_async(settings)`` is the core; ``mine(settings)`` is its synchronous twin (same
signature, same defaults) that also works inside Jupyter's running loop. ``settings`` is the one
:class:`MineSettings` object; nothing here reads the environment — :meth:`MineSettings.with_env`
does, when a caller passes it a mapping. Walking happens in an executor (``mining/executor.py``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from workbench import __version__
from workbench.aio import sync_twin
from workbench.mining.executor import Executor, LeanNotConfigured, LocalExecutor, open_lean, open_policy
from workbench.mining.progress import PROGRESS_LOG, MiningProgress, first_started, latency_scale, resume_line
from workbench.mining.output import (
    RUN_CONFIG,
    SUMMARY,
    ResultSink,
    existing_output,
    finished_theorems,
    manifest_metadata,
    read_status_lines,
    retry_counts,
)
from workbench.mining.commit import check_overwritable
from workbench.mining.export import export_records, split_output
from workbench.mining.identity import (check_resume, declared_identity, legacy_identity, read_identity,
                                       run_identity, write_identity)
from workbench.mining.records import INFRA_REASONS, Status, TheoremResult, WalkCounts
from workbench.mining.settings import MineSettings, offline_demo_settings
from workbench.mining.summary import format_summary, summarize
from workbench.policy.errors import PolicyUnavailable
from workbench.traces import Theorem, TraceSet, load_traces, select_theorems

__all__ = ["MineSettings", "MineResult", "LeanNotConfigured", "RunStopped", "mine_async", "mine",
           "offline_demo_settings", "ensure_demo_output", "retry_reason"]

log = logging.getLogger(__name__)


class RunStopped(RuntimeError):
    """The run lost generation (the policy server went away, or calls failed after their retries): finished
    theorems are sealed, ``left`` theorems are not, and ``--resume`` mines them (exit status 3)."""

    def __init__(self, message: str, result: "MineResult", *, left: int = 0) -> None:
        super().__init__(message)
        self.result = result
        self.left = left


def retry_reason(line: Mapping[str, Any], *, retry_incomplete: bool) -> str | None:
    """Why a finished theorem's result should be redone by --resume, or None (pure; one status line)."""
    if line.get("reason") in INFRA_REASONS:
        return str(line["reason"])
    counts = WalkCounts.from_dict(line.get("counts"))
    if line.get("status") == Status.TIMED_OUT and counts.infra_events:
        return "timed_out_during_infra_errors"
    if line.get("status") == Status.TIMED_OUT and counts.policy_cut_by_timeout:
        return "timed_out_waiting_for_generation"  # the budget ran out inside a call to the policy server
    if retry_incomplete and line.get("incomplete"):
        return "incomplete"
    return None


# --- the run -------------------------------------------------------------------------------------


@dataclass
class MineResult:
    output: Path
    summary: dict[str, Any]
    this_run: dict[str, Any]
    interrupted: bool = False
    pool_stats: dict[str, Any] | None = None
    results: list[TheoremResult] = field(default_factory=list, repr=False)

    @property
    def text(self) -> str:
        return format_summary(self.summary)


def _select(settings: MineSettings, traces: TraceSet, done: set[str]) -> tuple[list[Theorem], int]:
    todo = [t for t in traces.theorems if t.full_name not in done]
    return todo, len(traces.theorems) - len(todo)


@contextlib.contextmanager
def _sigterm_cancels(task: "asyncio.Task[Any]", received: list[int]) -> Iterator[None]:
    """SIGTERM (kill, a batch scheduler, a notebook's stop) does what Ctrl-C does: cancel, seal, summarise."""
    loop = asyncio.get_running_loop()

    def on_sigterm() -> None:
        received.append(signal.SIGTERM)
        if len(received) == 1:  # once: a second SIGTERM must not cancel the clean-up that seals results
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread / no Unix signals
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def _history_path(output: Path) -> Path:
    """The next free ``runs-NNN.json``: one per run, never overwritten."""
    used = [int(p.stem.split("-")[1]) for p in output.glob("runs-*.json") if p.stem.split("-")[1].isdigit()]
    return output / f"runs-{1 + max(used, default=-1):03d}.json"


def _mark_killed_runs(output: Path, sink: ResultSink) -> None:
    """A ``runs-NNN.json`` still ``running`` when the next run starts belongs to a run that was killed
    (SIGKILL, power loss): it never wrote its end, so say so."""
    for path in sorted(output.glob("runs-*.json")):
        try:
            history = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(history, dict) and history.get("state") == "running":
            sink.write_json(path.name, history | {
                "state": "killed", "ended_at": None,
                "note": f"the run ended without writing its end (killed); noticed by {_history_path(output).stem}"})


SEAL_POLL_S = 0.05  # how often the sealer looks for newly finished theorems when none is pending


async def mine_async(settings: MineSettings, *, policy: Any = None, keep_results: bool = False,
                     on_plan: Callable[[dict[str, Any]], None] | None = None) -> MineResult:
    """Mine ``settings.num_theorems`` theorems into ``settings.output``; see the module docstring.

    ``policy``: an already open policy (tests, benchmarks); by default one is opened from the settings.
    ``on_plan``: called once the traces are read with :func:`workbench.mining.flags.describe_plan`'s
    plan (backend, policy, traces, requested vs available), so the CLI and notebook 02 announce every
    fallback without reading the traces a second time.
    Ctrl-C and SIGTERM (from the first line on, start-up included) seal every finished theorem and raise
    KeyboardInterrupt; a run that lost generation raises :class:`RunStopped` after the same clean-up.
    Either way ``--resume`` continues.
    """
    sigterm: list[int] = []
    current = asyncio.current_task()
    with _sigterm_cancels(current, sigterm) if current is not None else contextlib.nullcontext():
        try:
            return await _mine(settings, policy, keep_results, on_plan, sigterm)
        except asyncio.CancelledError:
            if sigterm:  # SIGTERM before the walks started: ends as Ctrl-C does (exit status 130)
                raise KeyboardInterrupt("SIGTERM") from None
            raise


async def _mine(settings: MineSettings, policy: Any, keep_results: bool,
                on_plan: Callable[[dict[str, Any]], None] | None, sigterm: list[int]) -> MineResult:
    output, export_to = split_output(settings.output)  # NAME.parquet: mine into NAME.parquet.run, then export
    lean = open_lean(settings)  # fails fast, before any loading, when Lean is not configured
    if settings.ray_address:
        from workbench.mining.ray_backend import RayExecutor, require_ray

        require_ray()  # fails fast with the install command
    if settings.mode == "new" and existing_output(output):
        raise FileExistsError(f"{output} already holds mining results: pass --resume to continue or --overwrite")
    if settings.mode == "new" and export_to is not None and export_to.exists():
        raise FileExistsError(f"{export_to} already exists: pass --overwrite to replace it (or --resume its run)")
    if settings.mode == "overwrite":
        check_overwritable(output)  # before anything starts: a folder that is not a run is not ours to empty
    # The offline retrieval policy indexes every usable theorem: load them once and sample from them;
    # with SGLang (or a given policy) only the sample is kept.
    index_theorems: list[Theorem] | None = None
    if policy is None and not settings.server_url:
        everything = load_traces(settings.traces_path, min_steps=1, skip_bad=not settings.strict)
        index_theorems = everything.theorems
        traces = select_theorems(everything, min_steps=settings.min_steps, num_theorems=settings.num_theorems,
                                 seed=settings.seed)
    else:
        traces = load_traces(settings.traces_path, min_steps=settings.min_steps, num_theorems=settings.num_theorems,
                             seed=settings.seed, skip_bad=not settings.strict)
    resuming = (resume_line(output, len(finished_theorems(output)), first_started(output))
                if settings.mode == "resume" and existing_output(output) else None)
    if resuming:  # the first thing a continued run says (a re-run notebook resumes by default)
        log.warning("%s", resuming)
    if on_plan is not None:
        from workbench.mining.flags import describe_plan

        plan = describe_plan(settings, available=len(traces.theorems) + traces.not_sampled)
        plan["warnings"] = ([resuming] if resuming else []) + list(plan.get("warnings", []))
        on_plan(plan)
    if settings.num_theorems is not None and settings.num_theorems > len(traces.theorems):
        log.warning("%d theorems requested, %d available in %s", settings.num_theorems, len(traces.theorems),
                    "the bundled sample" if settings.traces is None else settings.traces)
    if traces.bad_records:
        log.warning("%d malformed trace entries skipped (--strict stops instead), e.g. %s", traces.bad_records,
                    "; ".join(traces.bad_examples[:3]))
    if not settings.simulated and settings.traces is None:
        # The bundled theorems are hand-written (names end in _foo): real Lean's copyFrom knows none of them.
        log.warning("mining the bundled sample with real Lean: its theorems do not exist in Mathlib, so every "
                    "goal.start will fail; pass --traces (or traces=) with LeanDojo Benchmark 4 traces")
    declared = declared_identity(settings)
    legacy = legacy_identity(manifest_metadata(output)) if settings.mode == "resume" and output.exists() else {}
    if settings.mode == "resume" and output.exists():
        check_resume(output, declared, legacy=legacy)  # before any process starts
    if settings.simulated:
        log.warning("SIMULATED Lean backend: labels are not Lean's; never train a model on this output")

    results: list[TheoremResult] = []
    this_run: dict[str, Any] = {"theorems": 0, "selected": len(traces.theorems), "unfinished": 0}
    if traces.bad_records:
        this_run["malformed_trace_entries"] = {"count": traces.bad_records, "first": traces.bad_examples}
    interrupted = False
    stopped: BaseException | None = None
    pool_stats = None
    async with contextlib.AsyncExitStack() as stack:
        if settings.ray_address:  # one actor per Lean node, each with its own pool and policy
            if policy is not None:
                raise ValueError("an open policy cannot be shipped to Ray actors: leave policy=None with ray_address")
            executor: Executor = await stack.enter_async_context(RayExecutor(settings, index_theorems or []))
        else:
            if policy is None:
                policy = await stack.enter_async_context(open_policy(settings, index_theorems or []))
            executor = LocalExecutor(await stack.enter_async_context(lean), policy, settings)
        policy_provenance = executor.policy_provenance
        provenance = {
            "lean_backend": "simulator" if settings.simulated else executor.lean_version,
            "lean_version": executor.lean_version,
            "lean_command": lean.describe().get("command"),
            "executor": executor.describe(),
            "simulated": settings.simulated,
            "policy": policy_provenance,
            "policy_model": (policy_provenance.get("model_info") or {}).get("model_path")
            or policy_provenance["policy"],
            "parameters": settings.as_dict(),
            "traces": traces.summary(),
            "workbench_version": __version__,
            "python": sys.version.split()[0],
            "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        identity = provenance["identity"] = run_identity(declared, executor.lean_version, policy_provenance)
        sink = ResultSink(output, provenance, mode="overwrite" if settings.mode == "overwrite" else "resume",
                          simulated=settings.simulated, flush_every_theorems=settings.flush_every_theorems,
                          seal_every_s=settings.seal_every_s)
        if settings.mode == "resume":
            check_resume(output, identity, legacy=legacy)
        if settings.mode != "resume" or read_identity(output) is None:
            write_identity(output, identity)
        selected = {t.full_name for t in traces.theorems}
        if settings.mode == "resume":
            retries = _retries(output, selected, settings)
            sink.retire(retries)
            this_run["retried"] = dict(sorted(collections.Counter(retries.values()).items()))
        todo, already = _select(settings, traces, finished_theorems(output))
        this_run["already_finished"] = already
        log.info("%d theorems selected, %d already finished in %s, %d to mine", len(traces.theorems), already,
                 output, len(todo))
        sink.write_json(RUN_CONFIG, provenance)
        _mark_killed_runs(output, sink)
        history = _history_path(output)
        sink.write_json(history.name, {"run": history.stem, "state": "running", **provenance})
        progress = MiningProgress(len(todo), settings.progress, settings.simulated, settings.progress_every_s,
                                  busy=lambda: executor.stats().busy_fraction, log_path=output / PROGRESS_LOG,
                                  latency=latency_scale(settings.simulator_args))
        if resuming:
            progress.write(resuming)
        t0 = time.monotonic()
        totals = {"tactics": 0, "generation_wait_s": 0.0, "lean_wait_s": 0.0, "walk_s": 0.0, "steps": 0}

        def on_result(result: TheoremResult) -> None:
            progress.update(result)
            if result.status is Status.UNFINISHED:  # never sealed: --resume mines it again
                this_run["unfinished"] += 1
                return
            sink.add(result)
            this_run["theorems"] += 1
            totals["tactics"] += len(result.attempts)
            totals["generation_wait_s"] += result.generation_wait_s
            totals["lean_wait_s"] += result.lean_wait_s
            totals["walk_s"] += result.duration_s
            totals["steps"] += result.steps_walked
            if keep_results:
                results.append(result)

        async def seal_ticker() -> None:
            while True:  # a lone finished theorem is sealed seal_every_s after it ended (plus the flush itself)
                due = sink.seal_due_in()
                await asyncio.sleep(SEAL_POLL_S if due is None else max(due, 0.001))
                sink.tick()

        workers = executor.start(todo, on_result)
        ticker = asyncio.create_task(progress.tick())
        sealer = asyncio.create_task(seal_ticker())
        try:
            finished, _ = await asyncio.wait(workers, timeout=settings.time_budget_s,
                                             return_when=asyncio.FIRST_EXCEPTION)
            this_run["stopped_by_time_budget"] = not finished or (
                len(finished) < len(workers) and not any(w.exception() for w in finished))
            for w in finished:
                if isinstance(w.exception(), PolicyUnavailable):
                    stopped = w.exception()
            for w in finished:
                if stopped is None:
                    w.result()  # re-raise a worker's unexpected error
        except (asyncio.CancelledError, KeyboardInterrupt):
            interrupted = True
            raise
        finally:
            for task in (*workers, ticker, sealer):
                task.cancel()
            await asyncio.gather(*workers, ticker, sealer, return_exceptions=True)
            wall = time.monotonic() - t0
            progress.close()
            sink.close()  # every finished theorem is sealed, also on Ctrl-C / SIGTERM / a dead policy server
            stats = executor.stats()
            pool_stats = stats.as_dict()
            this_run.update(
                wall_s=round(wall, 3),
                theorems_per_hour=round(this_run["theorems"] / wall * 3600, 1) if wall > 0 else None,
                tactics=totals["tactics"],
                tactics_per_s=round(totals["tactics"] / wall, 2) if wall > 0 else None,
                lean_busy_fraction=round(stats.busy_fraction, 4),
                generation_wait_s=round(totals["generation_wait_s"], 3),
                lean_wait_s=round(totals["lean_wait_s"], 3),
                walk_s=round(totals["walk_s"], 3),
                steps=totals["steps"],
                generation_wait_fraction=round(totals["generation_wait_s"] / totals["walk_s"], 4) if totals["walk_s"] else None,
                lean_restarts=stats.restarts_by_cause,
                lean_scope_switches=getattr(stats, "scope_switches", None),  # --source-root: file scopes re-entered
                interrupted=interrupted,
                policy=executor.policy_provenance.get("stats"),  # truncated, aborts, 4xx, completion tokens per candidate
                stopped_by=("SIGTERM" if sigterm else "interrupt" if interrupted
                            else "policy_unavailable" if stopped is not None
                            else "generation_failed" if this_run["unfinished"] else None),
                left_to_mine=len(todo) - this_run["theorems"],
            )
            summary = summarize(read_status_lines(output), simulated=settings.simulated,
                                provenance={k: provenance[k] for k in ("lean_backend", "simulated", "policy_model", "parameters",
                                                                     "identity")},
                                this_run=this_run)
            sink.write_json(SUMMARY, summary)
            final = provenance | {"policy": executor.policy_provenance}  # the policy's stats as the run ended
            sink.write_json(RUN_CONFIG, final)
            ended = "stopped" if interrupted or stopped or this_run["unfinished"] else "finished"
            sink.write_json(history.name, {"run": history.stem, "state": ended,
                                           **final, "ended_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                           "this_run": this_run, "lean_pool": pool_stats})
            if sigterm and interrupted:
                # A SIGTERM'd run ends as Ctrl-C does (the CLI prints how to resume, exit status 130).
                raise KeyboardInterrupt("SIGTERM")
    result = MineResult(output, summary, this_run, interrupted, pool_stats, results)
    left = this_run["left_to_mine"]
    if stopped is not None or this_run["unfinished"]:
        why = (f"the policy server is unavailable ({stopped})" if stopped is not None else
               f"generation failed for {this_run['unfinished']} theorems (after retries; see the log)")
        raise RunStopped(f"{why}; sealed {this_run['theorems']} finished theorems in {output}, {left} theorems "
                         "left to mine: re-run the same command with --resume once the server answers again.",
                         result, left=left)
    log.info("mining finished: %d theorems in %.1f s -> %s", this_run["theorems"], this_run.get("wall_s", 0.0), output)
    if settings.encode_url:
        await encode_mined_states(output, settings.encode_url)
    if export_to is not None and not interrupted:
        export_records(output, export_to, overwrite=True)  # the run's own export target
        log.info("records exported to %s (run folder, for --resume: %s)", export_to, output)
    return result


def _retries(output: Path, selected: set[str], settings: MineSettings) -> dict[str, str]:
    """Finished theorems --resume mines again: ended by infrastructure, within the retry limit."""
    done_before = retry_counts(output)
    out = {}
    for line in read_status_lines(output):
        name = line["theorem"]
        why = retry_reason(line, retry_incomplete=settings.retry_incomplete) if name in selected else None
        if why is None:
            continue
        if done_before[name] >= settings.retry_infra:
            log.info("%s: ended by %s again; not retried (limit --retry-infra %d)", name, why, settings.retry_infra)
            continue
        out[name] = why
    if out:
        log.warning("retrying %d theorems ended by infrastructure: %s", len(out),
                    dict(collections.Counter(out.values())))
    return out


async def encode_mined_states(output: Path, encode_url: str) -> Any:
    """Encode every distinct mined state through the sidecar into ``output/embeddings``."""
    from workbench.encode import encode_states
    from workbench.encode.factory import make_encoder
    from workbench.trajectory import read_trajectories

    states = read_trajectories(output)["state_pp"].unique().tolist()
    encoder = make_encoder(encode_url)
    try:
        report = await encode_states(states, encoder, output / "embeddings")
    finally:
        closer = getattr(encoder, "aclose", None)
        if closer is not None:
            await closer()
    log.info("encoded mined states: %s", report)
    return report


mine = sync_twin(mine_async)


def ensure_demo_output(output: str | Path, **overrides: Any) -> Path:
    """``output`` if it already holds mining results, else run the quick offline simulated mining there."""
    output = Path(output)
    if not existing_output(output):
        log.warning("%s has no mining output: running the quick offline SIMULATED mining first", output)
        mine(offline_demo_settings(output, **overrides))
    return output
