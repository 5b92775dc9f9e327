"""Micro-batching of model work from all live calls onto one dedicated worker thread.

No added latency when idle: the first request starts a batch at once; requests that
arrive while the worker is busy wait and go together in the next batch. The worker
thread can run at a lower CPU priority (assist.thread_priority) so it never delays
latency-bound wake-ups on the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from assist.thread_priority import ThreadPriority, apply_thread_priority, current_thread_priority

Req = TypeVar("Req")
Res = TypeVar("Res")
log = logging.getLogger(__name__)


class BatcherClosed(RuntimeError):
    pass


class MicroBatcher(Generic[Req, Res]):
    def __init__(
        self,
        process: Callable[[Sequence[Req]], Sequence[Res]],
        *,
        max_batch: int = 32,
        max_pending: int = 4096,
        name: str = "model",
        on_batch: Callable[[int, float], None] | None = None,
        thread_priority: ThreadPriority = "normal",
    ) -> None:
        self._process = process
        self._max_batch = max_batch
        self._executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix=f"callassist-{name}",
            initializer=apply_thread_priority,
            initargs=(thread_priority,),
        )
        self._priority_applied: Future[ThreadPriority] | None = None
        self._queue: asyncio.Queue[tuple[Req, asyncio.Future[Res]]] = asyncio.Queue(max_pending)
        self._task: asyncio.Task[None] | None = None
        self._on_batch = on_batch
        self._name = name

    def start(self) -> None:
        if self._priority_applied is None:  # start the worker thread now, not with the first call
            self._priority_applied = self._executor.submit(current_thread_priority)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"batcher-{self._name}")

    async def submit(self, request: Req) -> Res:
        if self._task is None or self._task.done():
            raise BatcherClosed(f"{self._name} batcher is not running")
        future: asyncio.Future[Res] = asyncio.get_running_loop().create_future()
        await self._queue.put((request, future))
        return await future

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    @property
    def thread_priority(self) -> ThreadPriority | None:
        """The worker thread's priority as the kernel reports it (None until the thread runs)."""
        applied = self._priority_applied
        return applied.result() if applied is not None and applied.done() else None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(BatcherClosed(f"{self._name} batcher closed"))
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            live = [(req, fut) for req, fut in batch if not fut.cancelled()]
            if not live:
                continue
            started = loop.time()
            try:
                results = await loop.run_in_executor(self._executor, self._process, [req for req, _ in live])
            except asyncio.CancelledError:
                for _, future in live:
                    if not future.done():
                        future.set_exception(BatcherClosed(f"{self._name} batcher closed"))
                raise
            except Exception as exc:  # the whole batch failed: each caller sees the error
                log.exception("%s batch of %d failed", self._name, len(live))
                for _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            if self._on_batch:
                self._on_batch(len(live), loop.time() - started)
            for (_, future), result in zip(live, results, strict=True):
                if not future.done():
                    future.set_result(result)
