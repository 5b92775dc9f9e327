"""The model threads run at the CPU priority asked for, as the kernel reports it, and nothing
else in the process does (the event loop must keep its normal priority)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from assist.batching import MicroBatcher
from assist.thread_priority import THREAD_PRIORITIES, ThreadPriority, current_thread_priority
from server.settings import Settings

SCHED_IDLE = 5  # the policy field of /proc/<pid>/task/<tid>/stat


def _priorities_seen(requests: Sequence[int]) -> list[tuple[ThreadPriority, int]]:
    return [(current_thread_priority(), threading.get_native_id()) for _ in requests]


@pytest.mark.parametrize("priority", THREAD_PRIORITIES)
async def test_batcher_worker_runs_at_the_priority_asked(priority: ThreadPriority) -> None:
    batcher = MicroBatcher(_priorities_seen, name=f"test-{priority}", thread_priority=priority)
    batcher.start()
    try:
        seen = await asyncio.gather(*(batcher.submit(i) for i in range(5)))
    finally:
        await batcher.close()
    assert {p for p, _ in seen} == {priority}
    assert {tid for _, tid in seen} != {threading.get_native_id()}  # ran on the worker, not here
    assert batcher.thread_priority == priority
    assert current_thread_priority() == "normal"  # the event loop's thread is untouched


def test_auto_priority_is_idle_only_where_events_cross_processes() -> None:
    assert Settings().model_thread_priority == "auto"
    assert Settings().model_priority() == "normal"  # memory://: one process
    assert Settings(bus_url="redis://127.0.0.1:6379/0").model_priority() == "idle"
    assert Settings(bus_url="redis://127.0.0.1:6379/0", model_thread_priority="low").model_priority() == "low"
    assert Settings(model_thread_priority="idle").model_priority() == "idle"
    with pytest.raises(ValidationError, match="model_thread_priority"):
        Settings(model_thread_priority="realtime")


def _threads_by_policy() -> dict[int, int]:
    """Thread id -> scheduling policy, for this process, from /proc."""
    policies = {}
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        # comm may hold spaces and parentheses: the fields start after the last ')'
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        policies[int(task.name)] = int(fields[38])  # field 41 of proc(5), counted from state
    return policies


@pytest.mark.parametrize("priority", ["idle", "normal"])
def test_server_reports_its_model_thread_priority(server_factory, priority: ThreadPriority) -> None:
    """A real server: /healthz says what the kernel applied, and with "idle" exactly the model
    threads (assist, and in-process QA once it scores) are SCHED_IDLE, not the event loop."""
    idle_before = {t for t, p in _threads_by_policy().items() if p == SCHED_IDLE}
    server = server_factory(model_thread_priority=priority)
    deadline = time.monotonic() + 10
    while True:
        health = httpx.get(f"{server.http}/healthz").json()
        if health.get("model_thread_priority") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert health["status"] == "ready"
    assert health["model_thread_priority"] == priority
    idle_now = {t for t, p in _threads_by_policy().items() if p == SCHED_IDLE} - idle_before
    assert server.thread.native_id not in idle_now  # the server's event loop keeps normal priority
    if priority == "idle":
        assert idle_now, "no thread of the server runs at SCHED_IDLE"
    else:
        assert not idle_now
