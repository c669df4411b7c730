"""``workbench <command>``: one entry point, each command in its own module.

A command module exposes ``configure(parser)`` (add its arguments) and ``run(args) -> int``.
Modules are imported only when their command runs, so ``workbench group`` never loads torch.
Exit status, the same for every command (``workbench.errors``): 0 done; 1 a bug (the whole traceback);
2 bad input (one line naming the file, flag or field); 3 an environment failure (a few lines: what
failed, what the server or process said, what to do; ``-v`` adds the traceback); 130 on Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
import traceback

from workbench.errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, EXIT_INTERRUPTED, EXIT_OK, describe, format_problem

COMMANDS = {
    "group": ("workbench.traces_cli", "group LeanDojo traces by theorem, split by theorem, write tactic pairs"),
    "encode": ("workbench.encode.cli", "encode trajectory states into the embedding cache"),
    "serve-encoder": ("workbench.encode.serve_cli", "serve a transformers model's mean-pooled states on /encode"),
    "trace": ("workbench.tracing.cli", "trace a Lean project's own files with the Pantograph that mines them"),
    "mine": ("workbench.mining.cli", "walk ground-truth proofs in Lean and mine labelled negatives"),
    "export": ("workbench.mining.export", "write a mining run's records to one Parquet file"),
    "train-ebm": ("workbench.ebm.cli", "train and evaluate the energy head"),
    "doctor": ("workbench.doctor.cli", "check a real Lean, SGLang and encoder against every assumption, before mining"),
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        # Configure only the command being run: the others may need heavy imports.
        if name in argv:
            importlib.import_module(module).configure(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)  # argparse itself exits 2 on a bad flag
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(importlib.import_module(args._module).run(args) or EXIT_OK)
    except KeyboardInterrupt:
        print("interrupted: every finished result is on disk; re-run with --resume to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as e:
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            print(f"error: disk full writing {e.filename or 'the output'}: free space, then re-run with --resume "
                  "(everything finished before is kept)", file=sys.stderr)
            return EXIT_BAD_INPUT
        if isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            print(f"error: cannot write or read {e.filename or 'a file'}: {e.strerror} (check the path and its "
                  "permissions, or choose another --output)", file=sys.stderr)
            return EXIT_BAD_INPUT

        problem = describe(e)
        if problem is None:
            raise  # a bug: the whole traceback
        if args.verbose:
            traceback.print_exc()
        print(format_problem(problem, style="cli"), file=sys.stderr)
        if not args.verbose:
            print("(run with -v for the traceback)", file=sys.stderr)
        return EXIT_ENVIRONMENT


if __name__ == "__main__":
    sys.exit(main())
