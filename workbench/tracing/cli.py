"""``workbench trace``: trace a Lean project's own files with the Pantograph that mines them.

    workbench trace --source-root MATHLIB_DIR [--modules 'Mathlib.Algebra.*' | --files A.lean,B.lean] --output traces/

The Lean flags are ``mine``'s (``--pantograph-cmd``, ``--imports``, ``--lean-workers``, ``--lean simulated``);
``mine --traces traces/`` then reads the output like LeanDojo's traces, made by the same Lean.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from workbench.errors import EXIT_ENVIRONMENT, EXIT_OK
from workbench.mining.cli import add_lean_arguments
from workbench.mining.flags import settings_from_flags
from workbench.tracing.run import SUMMARY, TraceSettings, trace


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


def _list(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    if text.startswith("@"):
        return tuple(line.strip() for line in Path(text[1:]).read_text(encoding="utf-8").splitlines() if line.strip())
    return tuple(x.strip() for x in text.split(",") if x.strip())


def run(args: argparse.Namespace) -> int:
    flags = vars(args) | {"traces": args.simulator_traces, "output": args.output}
    lean = settings_from_flags(flags, env=os.environ)
    settings = TraceSettings(source_root=args.source_root, output=args.output, lean=lean,
                             modules=_list(args.modules), files=_list(args.files),
                             file_timeout_s=args.file_timeout, progress=sys.stderr.isatty())
    if lean.simulated:
        print("WARNING: Lean backend is the SIMULATOR: these traces are simulated, not Lean's", file=sys.stderr)
    result = trace(settings)
    print(result.text)
    print(f"output: {result.output} (files/, metadata.json, {SUMMARY}); mine it with --traces {result.output}")
    return EXIT_ENVIRONMENT if result.files_failed and not result.files_done and not result.files_skipped else EXIT_OK
