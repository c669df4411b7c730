"""``workbench doctor``: check a real Lean (Pantograph), SGLang server and encoder against every assumption the
workbench makes, in minutes, before a night of mining.

Prints one table (check, expected, found, verdict, what to do), writes it to ``doctor.json`` and exits 0 when no
check failed (warnings allowed) or 3 when one did. The settings are ``workbench mine``'s (same flags, same
environment fallbacks: PANTOGRAPH_REPL, SGLANG_URL, ENCODE_URL), so the doctor examines what mining would start.
"""

from __future__ import annotations

import argparse
import os
import sys

from workbench.doctor.checks import SYSTEMS, DoctorOptions
from workbench.doctor.run import doctor
from workbench.mining.flags import settings_from_flags
from workbench.mining.settings import MineSettings

_D = MineSettings()
_O = DoctorOptions()


def configure(parser: argparse.ArgumentParser) -> None:
    p = parser
    p.add_argument("--only", action="append", choices=SYSTEMS, metavar="{lean,sglang,encoder}",
                   help="check only this system (repeatable); default: every one configured")
    p.add_argument("--output", default="doctor.json", metavar="FILE", help="where to write the report (JSON)")
    p.add_argument("--traces", metavar="PATH", help="the traces mining will use: theorems walked, states prompted "
                   "(default: the bundled sample)")
    p.add_argument("--pantograph-cmd", metavar="CMD", help="Pantograph REPL command (env PANTOGRAPH_REPL)")
    p.add_argument("--imports", default=",".join(_D.imports), help="modules the REPL imports, comma-separated")
    p.add_argument("--lean", choices=("auto", "pantograph", "simulated"), default="auto",
                   help="'simulated' checks the Lean simulator (rows labelled SIMULATED); 'auto': Pantograph when a "
                        "command is configured, else Lean is not checked")
    p.add_argument("--server-url", metavar="URL", help="SGLang server (env SGLANG_URL)")
    p.add_argument("--prompt-format", default=_D.prompt_format, metavar="NAME|FILE", help="as for workbench mine")
    p.add_argument("--temperature", type=float, default=_D.temperature, help="SGLang sampling temperature")
    p.add_argument("--encode-url", metavar="URL", help="encoding sidecar (env ENCODE_URL)")
    p.add_argument("--hidden-size", type=int, default=_O.hidden_size, metavar="N",
                   help="the width the encoder must answer (DeepSeek-Prover: 4096)")
    p.add_argument("--theorems", type=int, default=_O.theorems, metavar="N", help="trace theorems walked one step")
    p.add_argument("--server-wait", type=float, default=_O.server_wait_s, metavar="S",
                   help="seconds to wait for SGLang's /health 200")
    p.add_argument("--ramp-budget", type=float, default=_O.ramp_budget_s, metavar="S",
                   help="seconds the concurrency ramp may take")
    p.add_argument("--seed", type=int, default=_D.seed, help="which trace theorems are sampled")


def run(args: argparse.Namespace) -> int:
    flags = vars(args) | {"output": "doctor", "progress": False}  # the run folder is not used: nothing is mined
    settings = settings_from_flags(flags, env=os.environ)
    options = DoctorOptions(theorems=args.theorems, hidden_size=args.hidden_size, server_wait_s=args.server_wait,
                            ramp_budget_s=args.ramp_budget)
    report = doctor(settings, only=args.only, options=options)
    written = report.write(args.output)
    print(report.text())
    print(f"report: {written}", file=sys.stderr)
    return report.exit_status
