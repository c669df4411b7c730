"""The one bridge from synchronous code (notebooks, CLIs) to the async core.

``run_sync(coro)`` runs a coroutine to completion and returns its result:

* with no event loop running in this thread (a CLI, a script): ``asyncio.run``, whose SIGINT handling
  cancels the coroutine on Ctrl-C, lets its clean-up run, then raises ``KeyboardInterrupt``;
* inside a running loop (Jupyter's kernel): on a fresh loop in a helper thread, while this thread waits.
  Ctrl-C (interrupting the kernel) cancels the coroutine there, waits for its clean-up, then raises
  ``KeyboardInterrupt`` here, so a mining run still seals every finished theorem.

``sync_twin(fn)`` makes the synchronous twin of an async function: same signature, same defaults.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from typing import Any, Awaitable, Callable, Coroutine, TypeVar

__all__ = ["run_sync", "sync_twin"]

T = TypeVar("T")


class _Helper:
    """A coroutine on its own loop in a helper thread; the caller may cancel it from its own thread."""

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self.coro = coro
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task | None = None
        self.started, self.finished = threading.Event(), threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        loop = self.loop = asyncio.new_event_loop()
        try:
            self.task = loop.create_task(self.coro)
            self.started.set()
            self.result = loop.run_until_complete(self.task)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread as is
            self.error = e
        finally:
            self.started.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                loop.close()
                self.finished.set()

    def cancel(self) -> None:
        self.started.wait()
        if self.loop is not None and self.task is not None and not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(self.task.cancel)
            except RuntimeError:  # the loop closed meanwhile: nothing left to cancel
                pass


def run_sync(coro: Awaitable[T]) -> T:
    """Run ``coro`` to completion from synchronous code, also inside Jupyter's running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    helper = _Helper(coro)  # type: ignore[arg-type]
    thread = threading.Thread(target=helper.run, name="workbench-run-sync", daemon=True)
    thread.start()
    try:
        while not helper.finished.wait(0.5):
            pass
    except KeyboardInterrupt:
        helper.cancel()  # the coroutine's own clean-up runs (e.g. sealing finished theorems)
        helper.finished.wait()
        raise
    if helper.error is not None:
        raise helper.error
    return helper.result


def sync_twin(fn: Callable[..., Awaitable[T]]) -> Callable[..., T]:
    """The synchronous twin of an async function (one definition: no drift in signature or defaults)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        return run_sync(fn(*args, **kwargs))

    wrapper.__doc__ = f"Synchronous twin of ``{fn.__name__}`` (works inside Jupyter).\n\n{fn.__doc__ or ''}"
    return wrapper
