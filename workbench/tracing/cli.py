"""``workbench trace``: trace a Lean project's own files with the Pantograph that mines them.

    workbench trace --source-root MATHLIB_DIR [--modules 'Mathlib.Algebra.*' | --files A.lean,B.lean] --output traces/

The Lean flags are ``mine``'s (``--pantograph-cmd``, ``--imports``, ``--lean-workers``, ``--lean simulated``);
``mine --traces traces/`` then reads the output like LeanDojo's traces, made by the same Lean.
"""

from __future__ import annotations

import argparse
import os
import sys

from workbench.errors import EXIT_ENVIRONMENT, EXIT_OK
from workbench.mining.cli import add_lean_arguments
from workbench.tracing.run import SUMMARY, trace, trace_settings


def configure(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("--source-root", required=True, metavar="DIR", help="the Lean project (e.g. your Mathlib checkout)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--modules", default=None, metavar="GLOB[,GLOB]",
                       help="module-name globs, e.g. 'Mathlib.Algebra.*' (default: every .lean file)")
    which.add_argument("--files", default=None, metavar="LIST",
                       help="source paths relative to --source-root, comma-separated, or @FILE with one per line")
    p.add_argument("--output", required=True, metavar="DIR",
                   help="traces folder (files/<path>.json, metadata.json); an existing one is resumed")
    p.add_argument("--file-timeout", type=float, default=600.0, metavar="S", help="seconds per source file")
    add_lean_arguments(p)


def run(args: argparse.Namespace) -> int:
    settings = trace_settings(vars(args) | {"trace_output": args.output, "progress": sys.stderr.isatty()}, env=os.environ)
    if settings.lean.simulated:
        print("WARNING: Lean backend is the SIMULATOR: these traces are simulated, not Lean's", file=sys.stderr)
    result = trace(settings)
    print(result.text)
    print(f"output: {result.output} (files/, metadata.json, {SUMMARY}); mine it with --traces {result.output}")
    return EXIT_ENVIRONMENT if result.files_failed and not result.files_done and not result.files_skipped else EXIT_OK
