"""Every bus channel, stream and Redis key name, in one place.

Redis names live under one prefix (``callassist`` unless the bus URL says
``?prefix=...``). Pub/sub channels ignore the Redis database number, so two
deployments sharing one Redis server must use different prefixes, not just different
``/db`` numbers.
"""

from __future__ import annotations

PREFIX = "callassist"
SUPERVISOR_CHANNEL = "supervisor"
CALLS_STREAM = "calls"  # call.started / call.ended lifecycle events
QA_GROUP = "qa"  # consumer group of the QA workers on the calls stream
FEEDBACK_GROUP = "assist-feedback"  # consumer group on CALLS_STREAM: impressions for adoption figures
DEAD_LETTER_SUFFIX = ":dead"  # StreamWorker moves entries that failed max_tries times to "<stream>:dead"
ARCHIVE_GROUP = "archive"  # consumer group of `callassist worker archive`


def agent_channel(agent_id: str) -> str:
    return f"agent:{agent_id}"


def call_channel(call_id: str) -> str:
    return f"call:{call_id}"


def redis_channel(channel: str, prefix: str = PREFIX) -> str:
    return f"{prefix}:ch:{channel}"


def redis_channel_prefix(prefix: str = PREFIX) -> str:
    """What to strip from a Redis channel name to get the bus channel back."""
    return f"{prefix}:ch:"


def redis_stream(stream: str, prefix: str = PREFIX) -> str:
    return f"{prefix}:stream:{stream}"


# -- live-call registry (server/redis_registry.py)


def live_call_key(call_id: str, prefix: str = PREFIX) -> str:
    """JSON summary of one live call, with a TTL its owning process keeps refreshing."""
    return f"{prefix}:live:call:{call_id}"


def live_state_key(call_id: str, prefix: str = PREFIX) -> str:
    """What a reconnecting agent widget needs (recent transcript, last assist), same TTL."""
    return f"{prefix}:live:state:{call_id}"


def live_index_key(prefix: str = PREFIX) -> str:
    """Sorted set of live call ids, scored by start time (members may outlive expired calls)."""
    return f"{prefix}:live:index"


def live_agent_key(agent_id: str, prefix: str = PREFIX) -> str:
    """Set of the live call ids of one agent (members may outlive expired calls)."""
    return f"{prefix}:live:agent:{agent_id}"


def ended_call_key(call_id: str, prefix: str = PREFIX) -> str:
    """Marks a call id that ended (for a day) so no process starts it again."""
    return f"{prefix}:live:ended:{call_id}"


def routing_key(*parts: str) -> str:
    """Routing state in Redis: agents, calls, the queue index, the change stream."""
    return ":".join((PREFIX, "routing", *parts))
