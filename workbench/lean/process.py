"""One Pantograph REPL process.

Spawned under a guard (``guard.py``: the direct child, leader of the REPL's own process group and a child
subreaper) with an address-space cap (RLIMIT_AS) and stderr going to an anonymous temporary file (never
a pipe nobody reads). When the workbench process dies, however it dies, the guard gets its parent-death
signal and SIGKILLs the whole group: the REPL too, also when it is a grandchild (``lake env repl``). :meth:`LeanProcess.request` is the single I/O
chokepoint: it writes one line and reads one line under a deadline. Anything other than a JSON object
in time — timeout, EOF, broken pipe, a garbage line, or the caller cancelling while the reply is
pending — leaves the stream unsynchronised, so the whole process group is killed and a typed error
raised; there is no attempt to resync.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from typing import IO, Any, Callable, Sequence, TypeVar

from workbench.lean import protocol as P
from workbench.lean.config import LeanConfig
from workbench.lean.guard import guarded_argv
from workbench.lean.errors import (
    LeanGarbage,
    LeanProcessDied,
    LeanProtocolError,
    LeanStartError,
    LeanTimeout,
)

__all__ = ["LeanProcess", "repl_version"]

logger = logging.getLogger(__name__)

STREAM_LIMIT = 64 * 1024 * 1024  # one reply line may hold large goal lists
T = TypeVar("T")


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _libc_prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up in the parent (a child between fork and exec should not dlopen)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _libc_prctl()


def _child_setup(limit: int | None) -> Callable[[], None]:
    parent = os.getpid()

    def apply() -> None:  # runs in the child (the guard) between fork and exec
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if _PRCTL is not None:
            # The guard and its REPL die with the workbench process, even when that is SIGKILLed while the
            # REPL is busy or hung (a Mathlib REPL holds up to 12 GB). SIGTERM, not SIGKILL: the guard
            # catches it and kills its whole group. Linux ties this to the spawning thread: the event loop's.
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)

    return apply


def _resolve(command: str, config: LeanConfig) -> None:
    """Raise FileNotFoundError when ``command`` cannot be run (the guard would only exit 127 saying so)."""
    env = _env(config) or os.environ
    if os.sep in command:
        path = command if os.path.isabs(command) else os.path.join(config.cwd or os.getcwd(), command)
        found = path if os.access(path, os.X_OK) and not os.path.isdir(path) else None
    else:
        found = shutil.which(command, path=env.get("PATH", os.defpath))
    if found is None:
        raise FileNotFoundError(errno.ENOENT, "No such executable", command)


def _env(config: LeanConfig) -> dict[str, str] | None:
    return None if config.env is None else {**os.environ, **config.env}


class LeanProcess:
    """A started REPL (use :meth:`start`). Requests are serialised by an internal lock."""

    def __init__(self, proc: asyncio.subprocess.Process, stderr: IO[bytes], config: LeanConfig, label: str) -> None:
        self._proc = proc
        self._stderr = stderr
        self._config = config
        self.label = label
        self._lock = asyncio.Lock()
        self.started_at = time.monotonic()
        self.requests = 0
        self.busy_s = 0.0
        self.death_cause: str | None = None  # timeout / died / garbage / cancelled / closed / killed
        self._group_killed = False
        self.scope = ""  # the prelude whose scope the REPL holds ("": the default, empty scope; Repl.lean L21)
        self.scope_switches = 0  # frontend.process requests that changed it

    # -- lifecycle ----------------------------------------------------------------------------------

    @classmethod
    async def start(cls, config: LeanConfig, *, label: str = "lean") -> "LeanProcess":
        """Spawn the REPL and wait for ``ready.`` (at most ``config.start_timeout_s``)."""
        argv = config.argv()
        stderr = tempfile.TemporaryFile(prefix="lean-stderr-")
        try:
            _resolve(argv[0], config)
            proc = await _spawn(
                *guarded_argv(argv),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                cwd=config.cwd,
                env=_env(config),
                start_new_session=True,  # own process group (the guard leads it): kill the group, not just `lake`
                preexec_fn=_child_setup(config.memory_limit_bytes),
                limit=STREAM_LIMIT,
            )
        except OSError as e:
            stderr.close()
            raise LeanStartError(f"{label}: cannot run {argv[0]!r}: {e}") from e
        except BaseException:  # e.g. cancelled while spawning (_spawn kills what it started)
            stderr.close()
            raise
        self = cls(proc, stderr, config, label)
        logger.debug("%s: started pid %d: %s", label, proc.pid, " ".join(argv))
        try:
            await self._wait_ready()
            # automaticMode: true keeps the other goals in every reply (0.2.18 defaulted it off, which
            # leaves them dormant and makes proofs look complete).
            await self.options_set(timeout_ms=config.tactic_timeout_ms or None, automatic_mode=True)
        except BaseException:
            self._kill_now("start_failed")
            await self.close()  # reaps it and closes the stderr file (its tail is in the error already)
            raise
        logger.info("%s: ready (pid %d) after %.1fs", label, proc.pid, time.monotonic() - self.started_at)
        return self

    async def _wait_ready(self) -> None:
        assert self._proc.stdout is not None
        deadline = time.monotonic() + self._config.start_timeout_s
        seen: list[str] = []  # stdout lines before ready., for the error message
        while True:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                line = await asyncio.wait_for(self._proc.stdout.readline(), remaining)
            except TimeoutError:
                raise LeanStartError(
                    f"{self.label}: no 'ready.' within {self._config.start_timeout_s:g}s"
                    + (f"; stdout so far: {seen[-5:]!r}" if seen else ""),
                    stderr=self.stderr_tail(),
                ) from None
            except ValueError as e:  # a line over STREAM_LIMIT
                raise LeanStartError(f"{self.label}: unreadable startup output: {e}", stderr=self.stderr_tail()) from e
            if not line:
                code = await self._wait_exit(5.0)
                raise LeanStartError(
                    f"{self.label}: exited before 'ready.'" + (f"; stdout: {seen[-5:]!r}" if seen else ""),
                    stderr=self.stderr_tail(),
                    returncode=code,
                )
            info = P.parse_startup_line(line)
            if info.ready:
                return
            if info.error_kind is not None:
                raise LeanStartError(
                    f"{self.label}: startup error {info.error_kind}: {info.error_desc}", stderr=self.stderr_tail()
                )
            text = line.decode("utf-8", errors="replace").rstrip("\n")
            seen.append(text)
            logger.debug("%s: before ready: %s", self.label, text)

    async def _wait_exit(self, timeout: float) -> int | None:
        try:
            return await asyncio.wait_for(self._proc.wait(), timeout)
        except TimeoutError:
            return None

    def _kill_now(self, cause: str) -> None:
        """SIGKILL the whole process group (synchronous: safe inside a cancellation handler)."""
        if self.death_cause is None:
            self.death_cause = cause
        if not self._group_killed:
            # Even if the leader (e.g. `lake`) has exited, the REPL it started may live on in the group.
            self._group_killed = True
            _kill_group(self._proc)

    async def _died(self) -> None:
        """The REPL closed its end: its guard exits with the REPL's status once it has emptied the group
        (a moment); the group is killed after that (or if the guard lingers) all the same."""
        await self._wait_exit(2.0)
        await self._kill("died")

    async def _kill(self, cause: str) -> None:
        self._kill_now(cause)
        await self._wait_exit(10.0)
        self._close_pipes()

    def _close_pipes(self) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.is_closing():
            self._proc.stdin.close()
        # The stderr file is kept until close() so that error messages can quote it.

    async def close(self, *, grace_s: float = 2.0) -> None:
        """End the REPL: EOF on stdin (its loop exits), then kill the group if it lingers."""
        if self._proc.returncode is None and self.death_cause is None:
            self.death_cause = "closed"
            self._close_pipes()
            if await self._wait_exit(grace_s) is None:
                logger.debug("%s: did not exit on EOF; killing", self.label)
        await self._kill(self.death_cause or "closed")
        self._stderr.close()

    # -- state --------------------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def in_flight(self) -> bool:
        """A request is being written or its reply awaited."""
        return self._lock.locked()

    @property
    def alive(self) -> bool:
        return self.death_cause is None and self._proc.returncode is None

    @property
    def age_s(self) -> float:
        return time.monotonic() - self.started_at

    def stderr_tail(self) -> str:
        if self._stderr.closed:
            return ""
        # pread leaves the shared file offset alone, so the child's writes are not disturbed.
        fd = self._stderr.fileno()
        size = os.fstat(fd).st_size
        n = self._config.stderr_tail_bytes
        return os.pread(fd, n, max(0, size - n)).decode("utf-8", errors="replace")

    # -- the chokepoint -----------------------------------------------------------------------------

    async def request(self, req: P.Request, *, timeout_s: float | None = None) -> dict[str, Any]:
        """Send one request and return its reply object.

        Raises LeanProtocolError for ``{"error": ...}`` replies (the process stays usable) and
        LeanTimeout / LeanProcessDied / LeanGarbage (the process is killed) otherwise.
        """
        timeout = self._config.request_timeout_s if timeout_s is None else timeout_s
        line = req.to_line()
        async with self._lock:
            if not self.alive:
                raise LeanProcessDied(
                    f"{self.label}: process is dead ({self.death_cause})", returncode=self._proc.returncode
                )
            assert self._proc.stdin is not None and self._proc.stdout is not None
            t0 = time.monotonic()
            try:
                self._proc.stdin.write(line)
                async with asyncio.timeout(timeout):  # no extra task per request, unlike wait_for
                    await self._proc.stdin.drain()
                    reply = await self._proc.stdout.readline()
            except TimeoutError:
                await self._kill("timeout")
                raise LeanTimeout(f"{self.label}: no reply to {req.cmd} within {timeout:g}s; process killed") from None
            except (BrokenPipeError, ConnectionResetError) as e:
                await self._died()
                raise LeanProcessDied(
                    f"{self.label}: broken pipe writing {req.cmd}",
                    stderr=self.stderr_tail(),
                    returncode=self._proc.returncode,
                ) from e
            except ValueError as e:  # reply line over STREAM_LIMIT: the stream is out of sync
                await self._kill("garbage")
                raise LeanGarbage(f"<reply over {STREAM_LIMIT} bytes: {e}>", command=req.cmd) from e
            except asyncio.CancelledError:
                # The reply may still arrive: nobody would read it, so the process is useless.
                self._kill_now("cancelled")
                raise
            finally:
                self.busy_s += time.monotonic() - t0
                self.requests += 1
            if not reply:
                await self._died()
                raise LeanProcessDied(
                    f"{self.label}: EOF waiting for the reply to {req.cmd}",
                    stderr=self.stderr_tail(),
                    returncode=self._proc.returncode,
                )
            try:
                return P.decode_reply(reply, command=req.cmd)
            except LeanGarbage:
                await self._kill("garbage")
                raise

    # -- typed commands (names mirror the protocol) -------------------------------------------------

    async def goal_start(self, *, copy_from: str | None = None, expr: str | None = None,
                         levels: Sequence[str] = ()) -> P.GoalStartReply:
        return P.parse_goal_start(await self.request(P.goal_start(copy_from=copy_from, expr=expr, levels=levels)))

    async def goal_tactic(self, state_id: int, tactic: str, goal_id: int | None = None) -> P.GoalTacticReply:
        """Heartbeat / recursion limits and Pantograph's interrupt are Lean's verdict on the tactic: a
        reply (``TacticOutcome.LIMIT`` / ``TIMED_OUT``), not an error; the process is fine."""
        try:
            obj = await self.request(P.goal_tactic(state_id, tactic, goal_id))
        except LeanProtocolError as e:
            if isinstance(e, LeanGarbage) or (verdict := P.tactic_verdict(e)) is None:
                raise
            return verdict
        return P.parse_goal_tactic(obj)

    async def goal_print(self, state_id: int) -> P.GoalPrintReply:
        return P.parse_goal_print(await self.request(P.goal_print(state_id)))

    async def goal_print_ast(self, state_id: int) -> P.GoalPrintReply:
        """``goal.print`` with every expression's s-expression: ``printExprAST`` on for this one request.

        Three requests; the caller must hold the process for all of them (``LeanPool.call``), or another
        request would get (harmless, but large) s-expressions too. Should the last one not run, the
        option stays on: replies only grow, their meaning is the same."""
        await self.options_set(print_expr_ast=True)
        try:
            return await self.goal_print(state_id)
        finally:
            if self.alive:
                await self.options_set(print_expr_ast=False)

    async def frontend_process(self, file_name: str, *, timeout_s: float | None = None, read_header: bool = True,
                               inherit_env: bool = False, new_constants: bool = True,
                               invocations: bool = True) -> P.FrontendProcessReply:
        """Elaborate one source file (``frontend.process``). With ``invocations`` the REPL writes every tactic
        invocation to a file we name (Repl.lean v0.3.4 L236-239), read back here and attached to the units,
        as PyPantograph's ``tactic_invocations`` does (server.py 66b8e47 L324-348). ``readHeader`` true loads
        the file's imports into a fresh environment; without ``inheritEnv`` the REPL's own environment and scope
        are left as they were (L198-202, L231-235)."""
        with tempfile.TemporaryDirectory(prefix="workbench-invocations-") as tmp:
            path = os.path.join(tmp, "invocations.json") if invocations else None
            reply = P.parse_frontend_process(await self.request(P.frontend_process(
                file_name=file_name, read_header=read_header, inherit_env=inherit_env, invocations=path,
                new_constants=new_constants), timeout_s=timeout_s))
            if path is None:
                return reply
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except OSError as e:
                raise LeanProtocolError("malformed", f"{self.label}: the REPL wrote no invocations file ({e})",
                                        command="frontend.process") from None
            return P.parse_frontend_data(text, reply, where=f"invocations of {file_name}")

    async def enter_scope(self, prelude: str) -> tuple[P.Message, ...]:
        """Make ``prelude``'s scope the REPL's own (``frontend.process`` of the text on top of the REPL's
        environment, ``inheritEnv``: Repl.lean v0.3.4 L198-202, L231-235); ``""`` restores the default scope.
        The REPL has one scope for every state (``runCoreM`` reads it, L45-58), so the caller re-enters its
        scope whenever another user of the process changed it. Returns the prelude's error messages (the
        scope reached is kept anyway, as Lean keeps it)."""
        if prelude == self.scope:
            return ()
        reply = P.parse_frontend_process(await self.request(P.frontend_process(file=prelude, read_header=False,
                                                                               inherit_env=True)))
        self.scope = prelude
        self.scope_switches += 1
        return tuple(m for u in reply.units for m in u.messages if m.severity is P.Severity.ERROR)

    async def goal_delete(self, state_ids: Sequence[int]) -> None:
        P.parse_empty(await self.request(P.goal_delete(state_ids)))

    async def reset(self) -> P.StatReply:
        return P.parse_stat(await self.request(P.reset()))

    async def stat(self) -> P.StatReply:
        return P.parse_stat(await self.request(P.stat()))

    async def options_set(self, *, timeout_ms: int | None = None, automatic_mode: bool | None = None,
                          print_expr_ast: bool | None = None) -> None:
        P.parse_empty(await self.request(P.options_set(timeout_ms=timeout_ms, automatic_mode=automatic_mode,
                                                       print_expr_ast=print_expr_ast)))


# Spawned processes whose start was cancelled: killed and reaped in the background (strong references).
async def _spawn(*argv: str, **kwargs: Any) -> asyncio.subprocess.Process:
    """``asyncio.create_subprocess_exec`` that a cancel never interrupts midway.

    CPython 3.11 (asyncio/unix_events.py ``_make_subprocess_transport``): a cancel while the new
    process's pipes are being connected kills the direct child only, then awaits ``transp._wait()``;
    under load that await was seen never to return, so the cancelled start hung forever (a pool
    closing after a cancelled restart never returned). So the spawn runs to its end as its own task,
    and a cancelled caller first waits for it (milliseconds), kills the new process group and reaps it,
    then re-raises: nothing is left for the loop's shutdown to cancel midway or to close after the loop.
    """
    spawn = asyncio.ensure_future(asyncio.create_subprocess_exec(*argv, **kwargs))
    try:
        return await asyncio.shield(spawn)
    except asyncio.CancelledError:
        await _uncancellable(asyncio.wait({spawn}))
        if not spawn.cancelled() and spawn.exception() is None:
            proc = spawn.result()
            _kill_group(proc)
            await _uncancellable(proc.communicate())  # reaps it and drains and closes its pipes
        raise


async def _uncancellable(awaitable: Any) -> None:
    """Await to the end, whatever cancels arrive meanwhile (the caller re-raises its own cancel after)."""
    task = asyncio.ensure_future(awaitable)
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            pass
    if not task.cancelled():
        task.exception()  # retrieved: a failed reap is not worth a warning at exit


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the process group ``proc`` leads (started with start_new_session)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError:  # the group is gone and its id reused: only the child is ours
        if proc.returncode is None:
            proc.kill()


async def repl_version(config: LeanConfig, *, timeout_s: float = 60.0) -> str:
    """``repl --version`` output (stripped), for provenance."""
    argv = config.version_argv()
    try:
        proc = await _spawn(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=config.cwd,
            env=_env(config),
            start_new_session=True,
        )
    except OSError as e:
        raise LeanStartError(f"cannot run {argv[0]!r}: {e}") from e
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        _kill_group(proc)
        await proc.wait()
        raise LeanStartError(f"{' '.join(argv)} did not finish within {timeout_s:g}s") from None
    if proc.returncode != 0:
        raise LeanStartError(
            f"{' '.join(argv)} failed", stderr=err.decode("utf-8", errors="replace"), returncode=proc.returncode
        )
    return out.decode("utf-8", errors="replace").strip()
