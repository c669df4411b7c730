"""The REPL's guard: a tiny program between the workbench and a REPL command, so the REPL dies with us.

``python -I -S guard.py PARENT_PID -- COMMAND...`` (standard library only; it imports nothing of the
workbench). A parent-death signal reaches only the direct child: with ``lake env repl`` that is Lake,
and the REPL, Lake's child, outlived a SIGKILLed workbench while it was busy or hung. The guard is the
direct child instead. It is the leader of its own process group (the workbench spawns it with
``start_new_session``) and a child subreaper (``PR_SET_CHILD_SUBREAPER``: descendants whose parent dies
are re-parented to it, not to init), and it asks for SIGTERM when the workbench dies
(``PR_SET_PDEATHSIG``). It runs COMMAND as its child in the same group, gives it stdin and stdout, and
waits:

* the workbench dies (SIGTERM from the kernel, or any SIGTERM/SIGINT/SIGHUP): SIGKILL the whole group,
  the guard included;
* COMMAND exits: SIGKILL whatever is left of the group and every re-parented descendant, reap them,
  exit with COMMAND's status (128 + signal when it was killed by one);
* the workbench kills the group itself (``killpg``): the guard dies with everything else.

Linux only (prctl); :func:`guarded_argv` leaves the command unguarded elsewhere.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from pathlib import Path

__all__ = ["guarded_argv", "GUARD_SCRIPT"]

GUARD_SCRIPT = Path(__file__).resolve()
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def guarded_argv(argv: list[str], *, python: str = sys.executable) -> list[str]:
    """``argv`` run under the guard, with this process as the parent it watches (Linux); else ``argv``."""
    if not sys.platform.startswith("linux"):
        return list(argv)
    return [python, "-I", "-S", str(GUARD_SCRIPT), str(os.getpid()), "--", *argv]


def _prctl() -> object:
    return ctypes.CDLL(None, use_errno=True).prctl


def _others(pgid: int, me: int) -> list[int]:
    """Live processes other than the guard in its group, or re-parented to it (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me:
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    state, ppid, pgrp = f.read().rsplit(b")", 1)[1].split()[:3]
            except (OSError, ValueError):
                continue
            if state != b"Z" and (int(pgrp) == pgid or int(ppid) == me):
                out.append(int(entry))
    return out


def _kill_all(pgid: int, me: int) -> None:
    """SIGKILL everything left of the group and every re-parented descendant; reap them all."""
    while True:
        others = _others(pgid, me)
        for pid in others:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            while os.waitpid(-1, 0 if others else os.WNOHANG)[0] > 0:
                others = []  # reaped one: look again (its children are ours now)
        except ChildProcessError:
            if others:
                time.sleep(0.01)  # killed grandchildren wait to be re-parented to us
                continue
        if not others and not _others(pgid, me):
            return


def main(args: list[str]) -> int:
    if len(args) < 3 or args[1] != "--":
        sys.stderr.write("usage: guard.py PARENT_PID -- COMMAND...\n")
        return 2
    parent, command = int(args[0]), args[2:]
    me = os.getpid()
    pgid = os.getpgid(0)
    prctl = _prctl()
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    def die(signum: int, frame: object) -> None:  # the workbench is gone: nothing here may outlive it
        os.killpg(pgid, signal.SIGKILL)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, die)
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the workbench died before the request took effect
        return 1
    child = os.fork()
    if child == 0:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the guard itself SIGKILLed: take the command along
        try:
            os.execvp(command[0], command)
        except OSError as e:
            sys.stderr.write(f"guard: cannot run {command[0]!r}: {e}\n")
            os._exit(127)
    # Only the command talks to the workbench: with the guard's copies closed, the command's exit is EOF.
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return 1
        if pid == child:
            break
    _kill_all(pgid, me)
    return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
