"""``workbench train-ebm``: train the energy head on mined trajectories and/or traces, then evaluate
it on held-out theorems next to baselines (and, with ``--eval-traces``, on other LeanDojo files).

    workbench train-ebm --traces ../shared/data/leandojo_mathlib4/random/val.json --output runs/ebm-gt \\
        --eval-traces ../shared/data/leandojo_mathlib4/random/test.json        # offline: local MiniLM
    workbench train-ebm --trajectories runs/mine-01 --encode http://localhost:30001 --output runs/ebm-01

Every flag is a field of ``workbench.ebm.settings.EbmSettings``, the settings notebook 04 uses too.
States missing from the embedding cache are encoded first (``--encode none``: reported and left out).
"""

from __future__ import annotations

import argparse
import json
import logging

from workbench.ebm.settings import EbmSettings

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    EbmSettings.add_flags(parser)
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue from OUTPUT/last (architecture from the checkpoint)")
    again.add_argument("--overwrite", action="store_true", help="replace a finished run already in OUTPUT")


def run(args: argparse.Namespace) -> int:
    from workbench.ebm.pipeline import load_inputs, prepare_from_settings, train_from_settings

    from workbench.outputs import refuse_existing

    settings = EbmSettings.from_flags(args)
    refuse_existing(settings.output, ("last", "best", "summary.json"), what="a train-ebm run",
                    overwrite=args.overwrite, resume=args.resume)
    if args.resume:
        settings = settings.pinned_to_checkpoint()
    if not settings.traces and not settings.trajectories:
        raise ValueError("train-ebm: give --traces and/or --trajectories")
    records, table = load_inputs(settings, resume=args.resume)
    data = prepare_from_settings(settings, records, table)
    if data.simulated:
        log.warning("SIMULATED TRAINING DATA: these trajectories come from the Lean simulator, not from Lean")
    exp = train_from_settings(settings, data, resume=args.resume)
    summary = exp.summary()
    lines = [f"best {settings.metric} {exp.result.best_metric} at step {exp.result.best_step}; checkpoints in {settings.output}"]
    # the sibling checks are the headlines (what search needs); the progress metric follows
    lines += [r.verdict for r in (exp.checks, exp.mined, exp.siblings, exp.progress) if r is not None]
    if exp.simulated:
        lines.insert(0, "*** SIMULATED TRAINING DATA ***")
    log.info("\n".join(lines))
    print(json.dumps({k: summary[k] for k in ("best_step", "best_metric", "simulated")}, default=str))
    return 0
