"""Running and ending background tasks the same way everywhere."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterable
from typing import Any


async def cancel_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel every task, then wait for each to end (its own errors are its business:
    a task that failed has already logged why)."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


class Supervisor:
    """Owns a daemon's long-running tasks: none of them may end unnoticed.

    A task that raises, or that returns although it should run forever, is reported to
    ``on_failure(task_name, error)`` once (the engine logs the traceback, journals it and
    halts); cancelling is the only quiet way to end one.
    """

    def __init__(self, on_failure: Callable[[str, BaseException], None]) -> None:
        self._on_failure = on_failure
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def spawn(
        self, coro: Coroutine[Any, Any, Any], name: str, *, forever: bool = True
    ) -> asyncio.Task[Any]:
        """Run ``coro`` as a task; ``forever=False`` for one-shot work (only an error is a
        failure then)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._ended(done, forever))
        return task

    def watch(self, task: asyncio.Task[Any], name: str, *, forever: bool = False) -> None:
        """Supervise a task someone else created (a feed's own loop): an error it ends with is
        reported like a spawned task's. Not cancelled by ``stop``: its owner stops it."""
        task.add_done_callback(lambda done: self._watched_ended(done, name, forever))

    def _watched_ended(self, task: asyncio.Task[Any], name: str, forever: bool) -> None:
        if task.cancelled() or self._stopping:
            return
        error = task.exception()
        if error is None and forever:
            error = RuntimeError("ended although it should run until stopped")
        if error is not None:
            self._on_failure(name, error)

    def _ended(self, task: asyncio.Task[Any], forever: bool) -> None:
        self._tasks.discard(task)
        if task.cancelled() or self._stopping:
            return
        error = task.exception()
        if error is None and forever:
            error = RuntimeError("ended although it should run until stopped")
        if error is not None:
            self._on_failure(task.get_name(), error)

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def stop(self) -> None:
        self._stopping = True
        await cancel_all(list(self._tasks))
        self._tasks.clear()
