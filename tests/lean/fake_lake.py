"""A stand-in for ``lake env repl``: runs its arguments as a child (same process group, same stdio) and
waits for it, as Lake does, so the REPL is the workbench's grandchild. Writes the child's pid to
``$FAKE_LAKE_PIDFILE`` when set."""

import os
import subprocess
import sys

child = subprocess.Popen(sys.argv[1:])
if os.environ.get("FAKE_LAKE_PIDFILE"):
    with open(os.environ["FAKE_LAKE_PIDFILE"] + ".tmp", "w") as f:
        f.write(str(child.pid))
    os.replace(os.environ["FAKE_LAKE_PIDFILE"] + ".tmp", os.environ["FAKE_LAKE_PIDFILE"])
sys.exit(child.wait())
