"""CPU priority of the threads that run the models.

A model thread is a process's big CPU consumer, and nothing waits on it but the batch it is
computing. Every other wake-up on the host (the event loop answering a socket, Redis
relaying a message, another server process delivering it) moves a message someone is
waiting for. At normal priority those wake-ups queue behind the model for a scheduler
slice: on 2 cores that wait was most of the cross-process hop's tail. The price: on a host
at its CPU limit an idle model gets only what everything else leaves, so assists slow down
(both measured in docs/operations.md).

- ``normal``: left as it is.
- ``low``: nice 19, a small weight but still a share against other busy processes.
- ``idle``: SCHED_IDLE, runs only when nothing else wants the core.

The server's ``auto`` picks idle with a Redis bus and normal in one process
(server.settings). Linux only; elsewhere the thread stays as it is (logged once).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Literal

ThreadPriority = Literal["idle", "low", "normal"]
THREAD_PRIORITIES: tuple[ThreadPriority, ...] = ("idle", "low", "normal")
LOW_NICE = 19

log = logging.getLogger(__name__)
_unsupported_logged = False


def apply_thread_priority(priority: ThreadPriority) -> None:
    """Give the calling thread (only it: Linux keeps policy and nice per thread) this priority.
    A platform that refuses is logged, not raised: a thread left at normal priority is slower
    to yield, not wrong. An unknown name is a bug and raises."""
    global _unsupported_logged
    if priority == "normal":
        return
    if priority not in THREAD_PRIORITIES:
        raise ValueError(f"thread priority must be one of {THREAD_PRIORITIES}, not {priority!r}")
    thread = threading.get_native_id()
    try:
        if priority == "idle":
            os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))
        else:
            os.setpriority(os.PRIO_PROCESS, thread, LOW_NICE)
    except (AttributeError, OSError) as exc:  # not Linux, or a sandbox that forbids it
        if not _unsupported_logged:
            _unsupported_logged = True
            log.warning("cannot set model thread priority %r here (%s); it stays normal", priority, exc)
        return
    log.debug("thread %s (%d) runs at priority %s", threading.current_thread().name, thread, priority)


def current_thread_priority() -> ThreadPriority:
    """What the calling thread runs at, read back from the kernel."""
    thread = threading.get_native_id()
    if hasattr(os, "sched_getscheduler") and os.sched_getscheduler(thread) == os.SCHED_IDLE:
        return "idle"
    if hasattr(os, "getpriority") and os.getpriority(os.PRIO_PROCESS, thread) >= LOW_NICE:
        return "low"
    return "normal"
