"""``python -m tests.mining.mine_entry LATENCY_SCALE <mine args>``: the ``workbench mine`` CLI with the
simulator slowed down (or sped up) by LATENCY_SCALE, for tests that signal a running process.
``MINE_ENTRY_SIMULATOR_ARGS`` (space-separated) adds simulator flags, e.g. ``--start-delay 60``."""

import os
import sys

from workbench.cli import main
import workbench.mining.cli as mine_cli


def _with_latency(original, scale):
    def settings_from_args(args, env):
        import dataclasses

        s = original(args, env)
        extra = tuple(os.environ.get("MINE_ENTRY_SIMULATOR_ARGS", "").split())
        return dataclasses.replace(s, simulator_args=("--latency-scale", scale, *extra), seal_every_s=0.2)
    return settings_from_args


if __name__ == "__main__":
    mine_cli.settings_from_args = _with_latency(mine_cli.settings_from_args, sys.argv[1])
    sys.exit(main(["mine", *sys.argv[2:]]))
