"""``workbench mine``: walk ground-truth proofs in Lean and mine labelled negatives.

Options mirror the seed's ``generate-negatives``; PANTOGRAPH_REPL, SGLANG_URL and ENCODE_URL fill
``--pantograph-cmd``, ``--server-url`` and ``--encode-url`` when those are not given.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from workbench.errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, EXIT_OK
from workbench.mining.executor import LEAN_BACKENDS
from workbench.mining.export import split_output
from workbench.mining.flags import format_plan, settings_from_flags
from workbench.mining.run import LeanNotConfigured, MineSettings, RunStopped, mine

log = logging.getLogger(__name__)

_D = MineSettings()  # the defaults live in one place: the settings dataclass


def add_lean_arguments(p: argparse.ArgumentParser) -> None:
    """The flags that say which Lean answers: ``mine`` and ``trace`` take the same (one translation,
    :func:`workbench.mining.flags.settings_from_flags`)."""
    p.add_argument("--pantograph-cmd", metavar="CMD", help="Pantograph REPL command (env PANTOGRAPH_REPL)")
    p.add_argument("--imports", default=",".join(_D.imports), help="modules the REPL imports, comma-separated")
    p.add_argument("--lean-workers", type=int, default=_D.lean_workers, metavar="N", help="Lean processes")
    p.add_argument("--lean", choices=(*LEAN_BACKENDS, "auto"), default=_D.lean,
                   help="'simulated': the Lean simulator, for dry runs (labels are not Lean's); "
                        "'auto': the simulator when no Pantograph command is configured")
    p.add_argument("--simulator-latency-scale", type=float, default=None, metavar="X",
                   help="simulator only: multiplies its real-Lean latencies (0 = instant; default 1)")
    p.add_argument("--simulator-lean-version", choices=("newer", "same"), default=_D.simulator_lean_version,
                   help="simulator only: play a newer Lean than the traces, as every accepted Pantograph is "
                        "(unused section variables dropped, current printing), or the traces' own")
    p.add_argument("--simulator-traces", default=None, metavar="PATH",
                   help="simulator only: the traces its Lean knows (its 'Mathlib'; default: --traces)")


def configure(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("--tactic-pairs", "--traces", dest="traces", metavar="PATH",
                   help="tactic-pairs JSONL, LeanDojo JSON, or a LeanDojo folder (default: the bundled sample)")
    p.add_argument("--output", required=True, metavar="DIR", help="output folder (trajectory parts, attempts, summary); NAME.parquet: mine into "
                        "NAME.parquet.run and write all records to the one file NAME.parquet at the end")
    p.add_argument("--num-theorems", type=int, default=_D.num_theorems, metavar="N", help="sample N theorems (default: all)")
    p.add_argument("--min-steps", type=int, default=_D.min_steps, metavar="N", help="only theorems with >= N proof steps")
    p.add_argument("--seed", type=int, default=_D.seed, help="sampling seed")
    p.add_argument("--candidates-per-step", type=int, default=_D.candidates_per_step, metavar="N")
    p.add_argument("--target-negatives", type=int, default=_D.target_negatives, metavar="N",
                   help="stop a theorem once it has N negatives")
    p.add_argument("--temperature", type=float, default=_D.temperature, help="SGLang sampling temperature")
    add_lean_arguments(p)
    p.add_argument("--concurrency", type=int, default=None, metavar="N",
                   help="theorems in flight (default: 8 per Lean worker)")
    p.add_argument("--tactic-timeout", type=float, default=_D.tactic_timeout_s, metavar="S", help="seconds per tactic")
    p.add_argument("--theorem-timeout", type=float, default=_D.theorem_timeout_s, metavar="S",
                   help="seconds per theorem (what it produced is kept)")
    p.add_argument("--infra-grace", type=float, default=_D.infra_grace_s, metavar="S",
                   help="a theorem's clock stops while it waits on Lean's infrastructure (restarts, replays, "
                        "others' hangs and crashes), at most S seconds in all")
    p.add_argument("--server-url", metavar="URL", help="SGLang server (env SGLANG_URL); absent: offline retrieval policy")
    p.add_argument("--prompt-format", default=_D.prompt_format, metavar="NAME|FILE",
                   help="SGLang prompt: deepseek-prefill (pre-filled tactic turn, stops at ``` and blank line), "
                        "deepseek-chat (whole-proof answers), or a template file (.txt, or .json with stop strings)")
    p.add_argument("--server-wait", type=float, default=_D.server_wait_s, metavar="S",
                   help="seconds to wait for SGLang to finish loading (/health 503) before giving up")
    p.add_argument("--encode-url", metavar="URL", help="encoding sidecar (env ENCODE_URL): encode mined states afterwards")
    p.add_argument("--source-root", default=None, metavar="DIR",
                   help="the traced project's sources (e.g. the Mathlib checkout the traces name): start each theorem "
                        "in its file's scope (namespace/open/variable lines); where not possible, as without it (counted)")
    p.add_argument("--traces-lean-version", default=_D.traces_lean_version, metavar="VERSION",
                   help="the Lean toolchain the traces were made with (e.g. v4.7.0); default: LeanDojo's "
                        "metadata.json beside them, else unknown (said in the plan and identity.json)")
    p.add_argument("--progress-every", type=float, default=_D.progress_every_s, metavar="S",
                   help="seconds between progress log lines when stderr is not a terminal")
    p.add_argument("--ray", dest="ray_address", metavar="ADDRESS|auto|local", default=None,
                   help="mine on a Ray cluster: one actor per node started with --resources='{\"lean\": 1}' "
                        "(--lean-workers and --concurrency are per node); 'local' starts Ray on this machine")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue an interrupted run in --output")
    mode.add_argument("--overwrite", action="store_true", help="delete what --output holds first")
    p.add_argument("--retry-infra", type=int, default=_D.retry_infra, metavar="N",
                   help="with --resume: mine theorems ended by infrastructure (Lean crashes, restarts) again, "
                        "at most N times each; never those ended by Lean's verdict")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first malformed trace entry (default: skip it, count it, name it in the summary)")
    p.add_argument("--retry-incomplete", action="store_true",
                   help="with --resume: also redo theorems marked incomplete (candidates lost to transient failures)")


def settings_from_args(args: argparse.Namespace, env: dict[str, str] | os._Environ) -> MineSettings:
    # The same translation notebook 02 uses: same flags, same run.
    return settings_from_flags(vars(args) | {"progress": sys.stderr.isatty()}, env=env)


def run(args: argparse.Namespace) -> int:
    """Exit statuses as every command's (``workbench.errors``): bad input 2, environment 3 (``workbench.cli``)."""
    settings = settings_from_args(args, os.environ)
    try:
        result = mine(settings, on_plan=lambda plan: print(format_plan(plan), file=sys.stderr, flush=True))
    except LeanNotConfigured as e:
        print(str(e), file=sys.stderr)  # the whole install help, not one line
        return EXIT_BAD_INPUT
    except RunStopped as e:
        print(e.result.text)
        print(f"stopped: {e}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    print(result.text)
    print(f"output: {result.output} (summary.json, theorems.jsonl, attempts/)")
    _, export_to = split_output(settings.output)
    if export_to is not None:
        print(f"records: {export_to} (one Parquet file; resume with --output {settings.output} --resume)")
    return EXIT_OK
