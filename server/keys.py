"""Every bus channel, stream and Redis key name, in one place."""

from __future__ import annotations

PREFIX = "callassist"
SUPERVISOR_CHANNEL = "supervisor"
CALLS_STREAM = "calls"  # call.started / call.ended lifecycle events
QA_GROUP = "qa"  # consumer group of the QA workers on the calls stream
FEEDBACK_GROUP = "assist-feedback"  # consumer group on CALLS_STREAM: impressions for adoption figures


def agent_channel(agent_id: str) -> str:
    return f"agent:{agent_id}"


def call_channel(call_id: str) -> str:
    return f"call:{call_id}"


def redis_channel(channel: str) -> str:
    return f"{PREFIX}:ch:{channel}"


def redis_stream(stream: str) -> str:
    return f"{PREFIX}:stream:{stream}"


def routing_key(*parts: str) -> str:
    """Routing state in Redis: agents, calls, the queue index, the change stream."""
    return ":".join((PREFIX, "routing", *parts))
