"""Redis backend of the bus: pub/sub between processes, Streams for work that must not be lost.

Pub/sub
- One Redis subscription per channel per process: the first local outbox that joins a
  channel subscribes, the last one leaving unsubscribes; messages fan out locally
  through ``self.hub``.
- ``publish`` delivers to this process's own subscribers at once and writes the message
  to Redis's socket in the same step when the publisher connection is up and its buffer
  is short (waiting for a publisher task's turn on a busy event loop was most of the
  cross-process hop). Otherwise it queues the message and the publisher task sends the
  queue in order (pipelined) once the connection is back or drained. Either way the
  order of a call's events holds across processes, and a slow or absent Redis never
  blocks the caller. Every message carries its origin; a process skips its own when
  Redis echoes them back, so a local subscriber never gets an event twice.
- While Redis is unreachable, cross-process messages are dropped, counted and logged
  (a summary at most every 10 s). The listener reconnects with capped exponential
  backoff and re-subscribes every channel that still has local subscribers.

Streams
- XADD with an approximate MAXLEN (``stream_maxlen``, default 100,000 entries per
  stream): a consumer group may fall that far behind before unconsumed entries are
  trimmed. Entries trimmed while still pending are counted (``stream_trimmed``) and
  logged when XAUTOCLAIM reports them. Watch ``callassist_stream_lag``.
- Groups are created at id 0 with MKSTREAM (a new group also sees the retained history,
  like MemoryBus); a group that vanished because Redis restarted without persistence is
  re-created on the next read.
- XREADGROUP / XACK / XAUTOCLAIM, with delivery counts read from XPENDING so StreamWorker
  can bound retries.

Options ride on the URL: ``redis://host:6379/0?prefix=callassist&stream_maxlen=100000``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from server import keys
from server.bus import Bus, BusUnavailable, StreamEntry, encode
from server.outbox import BusMessage, Outbox

log = logging.getLogger(__name__)

DEFAULT_STREAM_MAXLEN = 100_000
CONNECT_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 5.0
HEALTH_INTERVAL_S = 2.0  # the listener pings an idle subscription this often
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 2.0
PUBLISH_BACKLOG = 10_000  # messages queued for Redis before new ones are dropped
PUBLISH_BATCH = 512
WRITE_BUFFER_HIGH = 1 << 20  # bytes not yet taken by the kernel: queue instead of writing
SUBSCRIBE_CONFIRM_S = 2.0
STATS_INTERVAL_S = 5.0
DROP_LOG_INTERVAL_S = 10.0
ORIGIN_CHARS = 16
BUS_OPTIONS = ("prefix", "stream_maxlen")


def split_bus_url(url: str) -> tuple[str, dict[str, str]]:
    """Separate our options (prefix, stream_maxlen) from the URL redis-py understands."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in BUS_OPTIONS}
    rest = [(k, v) for k, v in query if k not in BUS_OPTIONS]
    return urlunsplit(parts._replace(query=urlencode(rest))), ours


def redacted(url: str) -> str:
    """The URL without its password, for logs and /healthz."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class _DropLog:
    """Counts dropped cross-process messages and logs a summary at most every interval."""

    def __init__(self, bus: RedisBus) -> None:
        self._bus = bus
        self._unlogged = 0
        self._reason = ""
        self._last_log = 0.0

    def add(self, count: int, reason: str) -> None:
        self._bus.counters["dropped"] += count
        self._unlogged += count
        self._reason = reason
        if time.monotonic() - self._last_log >= DROP_LOG_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        if self._unlogged:
            log.warning(
                "bus: dropped %d cross-process message(s) (%s); %d dropped since start",
                self._unlogged,
                self._reason,
                self._bus.counters["dropped"],
            )
        self._unlogged = 0
        self._last_log = time.monotonic()


class RedisBus(Bus):
    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        stream_maxlen: int | None = None,
        publish_backlog: int = PUBLISH_BACKLOG,
        health_interval_s: float = HEALTH_INTERVAL_S,
        stats_interval_s: float = STATS_INTERVAL_S,
    ) -> None:
        super().__init__()
        redis_url, options = split_bus_url(url)
        self.url = redacted(url)
        self.prefix = prefix or options.get("prefix") or keys.PREFIX
        self.stream_maxlen = stream_maxlen or int(options.get("stream_maxlen", DEFAULT_STREAM_MAXLEN))
        self.origin = uuid.uuid4().hex[:ORIGIN_CHARS]
        self.publish_backlog = publish_backlog
        self.health_interval_s = health_interval_s
        self.stats_interval_s = stats_interval_s
        common: dict[str, Any] = {
            "decode_responses": True,
            "protocol": 2,  # same reply shapes on every redis-py >= 5
            "socket_connect_timeout": CONNECT_TIMEOUT_S,
            "socket_keepalive": True,
        }
        # One immediate retry replaces a pooled connection that died with a Redis restart.
        self.redis = Redis.from_url(
            redis_url, socket_timeout=COMMAND_TIMEOUT_S, retry=Retry(NoBackoff(), 1), **common
        )
        # The subscription: its own pool, no retries (the listener owns reconnection).
        self._sub_client = Redis.from_url(
            redis_url, socket_timeout=COMMAND_TIMEOUT_S, retry=Retry(NoBackoff(), 0), **common
        )
        self._channel_prefix = keys.redis_channel_prefix(self.prefix)
        self._pubsub: PubSub | None = None
        self._sub_lock = asyncio.Lock()
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._connected = asyncio.Event()
        self._first_attempt = asyncio.Event()
        self._outgoing: deque[tuple[str, str]] = deque()
        self._outgoing_ready = asyncio.Event()
        self._generation = 0  # +1 at every (re)connection of the listener
        # The publisher connection (owned by _send_loop), its reply reader and its generation.
        self._publisher: Connection | None = None
        self._publisher_replies: asyncio.Task[None] | None = None
        self._publisher_generation = -1
        self._unanswered: deque[int] = deque()  # sizes of the batches Redis has not confirmed yet
        self._replies_due = asyncio.Event()
        self._all_confirmed = asyncio.Event()  # nothing queued, nothing unconfirmed
        self._all_confirmed.set()
        self._drops = _DropLog(self)
        self._groups: set[tuple[str, str]] = set()
        self._streams: set[str] = {keys.CALLS_STREAM, keys.CALLS_STREAM + keys.DEAD_LETTER_SUFFIX}
        self._claim_cursor: dict[tuple[str, str], str] = {}
        self._stream_stats: dict[str, dict[str, Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the listener, publisher and stats tasks; wait (briefly) for the first connection.
        Redis being down is not fatal: the server starts and keeps reconnecting."""
        self._tasks = [
            asyncio.create_task(self._listen(), name="redis-bus-listener"),
            asyncio.create_task(self._send_loop(), name="redis-bus-publisher"),
            asyncio.create_task(self._sample_streams(), name="redis-bus-stats"),
        ]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CONNECT_TIMEOUT_S * 2):
                await self._first_attempt.wait()
        if not self.connected:
            log.error("bus: Redis at %s is unreachable; serving locally and retrying", self.url)

    async def close(self) -> None:
        # Let queued messages reach the other processes, and Redis confirm them.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                if self.connected:
                    await self._all_confirmed.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._drops.flush()
        await self.redis.aclose()
        await self._sub_client.aclose()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def backlog(self) -> int:
        """Messages waiting to be sent to Redis."""
        return len(self._outgoing)

    # ------------------------------------------------------------------ pub/sub

    async def publish(
        self, channels: Sequence[str], payload: dict[str, Any], *, droppable: bool = False
    ) -> None:
        message = encode(payload, droppable)
        wire = f"{self.origin}{'d' if droppable else 'k'}{message.text}"
        for channel in channels:
            self.counters["published"] += 1
            self.hub.deliver(channel, message)  # local subscribers never wait for Redis
            if not self.connected:
                self._drops.add(1, "Redis unavailable")
            elif len(self._outgoing) >= self.publish_backlog:
                self._drops.add(1, "backlog to Redis full")
            else:
                self._outgoing.append((keys.redis_channel(channel, self.prefix), wire))
                self._all_confirmed.clear()
        if self._outgoing:
            if self._writable():
                self._write_outgoing()
            else:
                self._outgoing_ready.set()

    async def subscribe(self, channel: str, outbox: Outbox) -> None:
        if not self.hub.add(channel, outbox):
            return
        name = keys.redis_channel(channel, self.prefix)
        async with self._sub_lock:
            pubsub = self._pubsub
            if pubsub is None:
                return  # the listener subscribes every hub channel when it (re)connects
            confirmed = self._confirmations.get(name)
            if confirmed is None or confirmed.done():
                confirmed = self._confirmations[name] = asyncio.get_running_loop().create_future()
            try:
                await pubsub.subscribe(name)
            except (RedisError, OSError):
                log.debug("bus: subscribe %s failed; the listener will resubscribe", name, exc_info=True)
                return
        # Wait for Redis to confirm, so events published after this returns are not missed.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SUBSCRIBE_CONFIRM_S):
                await asyncio.shield(confirmed)

    async def unsubscribe(self, channel: str, outbox: Outbox) -> None:
        if not self.hub.remove(channel, outbox):
            return
        name = keys.redis_channel(channel, self.prefix)
        async with self._sub_lock:
            if self._pubsub is None or channel in self.hub.channels():
                return
            try:
                await self._pubsub.unsubscribe(name)
            except (RedisError, OSError):
                log.debug("bus: unsubscribe %s failed", name, exc_info=True)

    async def _listen(self) -> None:
        """Hold the subscription connection: connect, subscribe, read; on failure back off and redo."""
        failures = 0
        down_since: float | None = None
        ever_connected = False
        while True:
            pubsub = self._sub_client.pubsub()
            try:
                await pubsub.connect()
                async with self._sub_lock:
                    channels = [keys.redis_channel(c, self.prefix) for c in self.hub.channels()]
                    if channels:
                        await pubsub.subscribe(*channels)
                    self._pubsub = pubsub
                await self._create_known_groups()
                self._generation += 1
                self._connected.set()
                self._first_attempt.set()
                if ever_connected:
                    self.counters["reconnects"] += 1
                    self._drops.flush()
                    log.warning(
                        "bus: reconnected to Redis after %.1f s; resubscribed %d channel(s)",
                        time.monotonic() - (down_since or time.monotonic()),
                        len(channels),
                    )
                ever_connected, failures, down_since = True, 0, None
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, TimeoutError) as exc:
                if self.connected or down_since is None:
                    log.warning("bus: lost Redis at %s (%s); reconnecting with backoff", self.url, exc)
                    down_since = time.monotonic()
                failures += 1
            except Exception:  # a bug must not end cross-process delivery for good
                log.exception("bus: listener failed; restarting it")
                down_since = down_since or time.monotonic()
                failures += 1
            finally:
                self._connected.clear()
                self._pubsub = None
                for future in self._confirmations.values():
                    if not future.done():
                        future.set_result(None)
                self._confirmations.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            self._first_attempt.set()
            delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(failures - 1, 0))
            await asyncio.sleep(delay * (0.5 + random.random() / 2))  # jitter: not all processes at once

    async def _read(self, pubsub: PubSub) -> None:
        ping_sent: float | None = None
        while True:
            message = await pubsub.get_message(timeout=self.health_interval_s)
            if message is None:
                if ping_sent is not None:
                    raise TimeoutError(f"no answer to PING within {self.health_interval_s:.0f} s")
                await pubsub.ping()
                ping_sent = time.monotonic()
                continue
            ping_sent = None  # any traffic proves the connection alive
            kind = message["type"]
            if kind == "message":
                self._received(message["channel"], message["data"])
            elif kind == "subscribe":
                future = self._confirmations.pop(message["channel"], None)
                if future is not None and not future.done():
                    future.set_result(None)

    def _received(self, redis_channel: str, data: Any) -> None:
        if not isinstance(data, str) or len(data) <= ORIGIN_CHARS + 1 or data[ORIGIN_CHARS] not in "dk":
            self.counters["undecodable"] += 1
            log.warning("bus: skipped an undecodable message on %s", redis_channel)
            return
        if data.startswith(self.origin):
            return  # our own message: local subscribers already have it
        self.counters["received"] += 1
        channel = redis_channel.removeprefix(self._channel_prefix)
        self.hub.deliver(channel, BusMessage(data[ORIGIN_CHARS + 1 :], data[ORIGIN_CHARS] == "d"))

    def _writable(self) -> bool:
        """True when queued messages may be written to Redis right now, from the caller's step."""
        connection, replies = self._publisher, self._publisher_replies
        if connection is None or replies is None or replies.done() or not self.connected:
            return False
        if self._publisher_generation != self._generation:  # Redis was lost since it opened
            return False
        writer = connection._writer  # redis-py keeps the StreamWriter here
        if writer is None or writer.transport.is_closing():
            return False
        return writer.transport.get_write_buffer_size() < WRITE_BUFFER_HIGH

    def _write_outgoing(self) -> None:
        """Write everything queued to the publisher connection, in order, without waiting
        for the replies (the reply reader confirms them)."""
        connection = self._publisher
        assert connection is not None and connection._writer is not None
        while self._outgoing:
            batch = [self._outgoing.popleft() for _ in range(min(PUBLISH_BATCH, len(self._outgoing)))]
            connection._writer.writelines(connection.pack_commands([("PUBLISH", n, w) for n, w in batch]))
            self._unanswered.append(len(batch))
        self._replies_due.set()

    async def _send_loop(self) -> None:
        """Own the publisher connection: (re)open it when Redis comes back, send what
        ``publish`` could not write at once, and wait for the socket to drain when Redis
        reads slower than we publish."""
        try:
            while True:
                await self._outgoing_ready.wait()
                self._outgoing_ready.clear()
                if not self._outgoing:
                    continue
                if not self.connected:
                    self._drops.add(len(self._outgoing), "Redis unavailable")
                    self._outgoing.clear()
                    self._check_confirmed()
                    continue
                if not self._writable():
                    stale = self._publisher_replies is None or self._publisher_replies.done()
                    if stale or self._publisher_generation != self._generation:
                        try:
                            await self._open_publisher()
                        except (RedisError, OSError) as exc:
                            self._drops.add(len(self._outgoing), f"cannot connect to publish: {exc}")
                            self._outgoing.clear()
                            await self._close_publisher()  # also checks confirmed
                            continue
                connection = self._publisher
                assert connection is not None and connection._writer is not None
                self._write_outgoing()
                try:
                    async with asyncio.timeout(COMMAND_TIMEOUT_S):
                        await connection._writer.drain()
                except (RedisError, OSError, TimeoutError) as exc:
                    log.debug("bus: publish failed: %s", exc)
                    await self._close_publisher()  # counts what Redis did not confirm
                if self._outgoing:  # published while we drained
                    self._outgoing_ready.set()
        finally:
            await self._close_publisher()

    async def _open_publisher(self) -> None:
        await self._close_publisher()
        generation = self._generation
        connection = self.redis.connection_pool.make_connection()
        await connection.connect()
        self._publisher, self._publisher_generation = connection, generation
        self._publisher_replies = asyncio.create_task(
            self._read_replies(connection), name="redis-bus-replies"
        )

    async def _close_publisher(self) -> None:
        connection, replies = self._publisher, self._publisher_replies
        self._publisher = self._publisher_replies = None
        if replies is not None:
            replies.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                await replies
        if connection is not None:
            with contextlib.suppress(RedisError, OSError):
                await connection.disconnect()
        unconfirmed = sum(self._unanswered)
        self._unanswered.clear()
        if unconfirmed:  # sent, but Redis never confirmed them: count them as lost
            self._drops.add(unconfirmed, "connection lost before Redis confirmed")
        self._check_confirmed()

    async def _read_replies(self, connection: Connection) -> None:
        """Confirm sent batches; no reply within the command timeout means the connection is dead."""
        while True:
            if not self._unanswered:
                self._replies_due.clear()
                await self._replies_due.wait()
                continue
            while self._unanswered[0]:
                try:
                    await connection.read_response()
                    self.counters["sent"] += 1
                except ResponseError as exc:  # e.g. an ACL that forbids PUBLISH
                    self._drops.add(1, f"Redis refused PUBLISH: {exc}")
                self._unanswered[0] -= 1
            self._unanswered.popleft()
            self._check_confirmed()

    def _check_confirmed(self) -> None:
        if not self._outgoing and not self._unanswered:
            self._all_confirmed.set()

    # ------------------------------------------------------------------ streams

    def _key(self, stream: str) -> str:
        return keys.redis_stream(stream, self.prefix)

    def _require_connection(self) -> None:
        if not self.connected:
            raise BusUnavailable(f"Redis at {self.url} is unavailable")

    async def stream_add(self, stream: str, fields: dict[str, Any]) -> str:
        self._require_connection()
        self._streams.add(stream)
        data = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
        try:
            entry_id = await self.redis.xadd(
                self._key(stream), {"data": data}, maxlen=self.stream_maxlen, approximate=True
            )
        except (RedisError, OSError) as exc:  # e.g. connection lost, or OOM under noeviction
            raise BusUnavailable(f"XADD to {stream} failed: {exc}") from exc
        self.counters["stream_added"] += 1
        return str(entry_id)

    async def ensure_group(self, stream: str, group: str) -> None:
        """Create the group (at id 0, with the stream). While Redis is down the group is
        remembered and created on reconnect, so a worker can start before Redis is up."""
        self._streams.add(stream)
        self._groups.add((stream, group))
        if self.connected:
            await self._create_group(stream, group)

    async def _create_group(self, stream: str, group: str) -> None:
        try:
            await self.redis.xgroup_create(self._key(stream), group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _create_known_groups(self) -> None:
        for stream, group in list(self._groups):
            try:
                await self._create_group(stream, group)
            except ResponseError as exc:  # e.g. a key of another type: the reads will say so too
                log.error("bus: cannot create group %s on %s: %s", group, stream, exc)

    async def stream_read(
        self, stream: str, group: str, consumer: str, *, count: int = 10, block_ms: int = 1000
    ) -> list[StreamEntry]:
        self._require_connection()
        self._groups.add((stream, group))
        # BLOCK 0 would block forever in Redis; the memory bus reads 0 as "do not block".
        block = min(block_ms, int((COMMAND_TIMEOUT_S - 1) * 1000)) if block_ms > 0 else None
        try:
            reply = await self.redis.xreadgroup(
                group, consumer, {self._key(stream): ">"}, count=count, block=block
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            log.warning("bus: group %s on %s vanished (Redis restarted empty?); re-creating", group, stream)
            await self._create_group(stream, group)
            return []
        return [StreamEntry(entry_id, _decode(raw), 1) for entry_id, raw in _stream_entries(reply)]

    async def stream_ack(self, stream: str, group: str, entry_ids: list[str]) -> None:
        self._require_connection()
        if entry_ids:
            await self.redis.xack(self._key(stream), group, *entry_ids)
            self.counters["stream_acked"] += len(entry_ids)

    async def stream_claim(
        self, stream: str, group: str, consumer: str, *, min_idle_ms: int, count: int = 10
    ) -> list[StreamEntry]:
        """XAUTOCLAIM from a cursor kept per group, then the delivery count of each claimed
        entry from XPENDING (XAUTOCLAIM itself increments it)."""
        self._require_connection()
        key = self._key(stream)
        cursor = self._claim_cursor.get((stream, group), "0-0")
        try:
            reply = await self.redis.xautoclaim(key, group, consumer, min_idle_ms, cursor, count=count)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self._create_group(stream, group)
            return []
        self._claim_cursor[(stream, group)] = str(reply[0])
        claimed = [(entry_id, raw) for entry_id, raw in reply[1] if entry_id is not None and raw is not None]
        deleted = list(reply[2]) if len(reply) > 2 else []
        deleted += [entry_id for entry_id, raw in reply[1] if entry_id is not None and raw is None]
        if deleted:
            self.counters["stream_trimmed"] += len(deleted)
            log.error(
                "bus: %d pending entr(ies) of %s/%s were trimmed before being acked (MAXLEN %d too small "
                "for the backlog): %s",
                len(deleted),
                stream,
                group,
                self.stream_maxlen,
                ", ".join(deleted[:10]),
            )
        if not claimed:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry_id, _ in claimed:
                pipe.xpending_range(key, group, entry_id, entry_id, 1)
            pending = await pipe.execute()
        counts = {row["message_id"]: int(row["times_delivered"]) for rows in pending for row in rows}
        self.counters["stream_claimed"] += len(claimed)
        return [StreamEntry(entry_id, _decode(raw), counts.get(entry_id, 2)) for entry_id, raw in claimed]

    async def stream_info(self, stream: str, group: str) -> dict[str, int]:
        self._require_connection()
        key = self._key(stream)
        length = int(await self.redis.xlen(key))
        if length == 0 and not await self.redis.exists(key):
            return {"length": 0, "pending": 0, "lag": 0}
        for info in await self.redis.xinfo_groups(key):
            if info["name"] == group:
                return {"length": length, "pending": int(info["pending"]), "lag": await self._lag(key, info)}
        return {"length": length, "pending": 0, "lag": length}

    async def _lag(self, key: str, info: dict[str, Any]) -> int:
        if info.get("lag") is not None:
            return int(info["lag"])
        # Redis cannot tell (e.g. after XDEL): count what lies after the last delivered id.
        after = await self.redis.xrange(key, f"({info['last-delivered-id']}", "+", count=100_000)
        return len(after)

    def stream_gauges(self) -> dict[str, dict[str, Any]]:
        return self._stream_stats

    async def _sample_streams(self) -> None:
        """Refresh length, pending and lag of every known stream and group for /metrics."""
        while True:
            if self.connected:
                try:
                    self._stream_stats = await self._collect_stream_stats()
                except (RedisError, OSError):
                    log.debug("bus: stream stats unavailable", exc_info=True)
            await asyncio.sleep(self.stats_interval_s)

    async def _collect_stream_stats(self) -> dict[str, dict[str, Any]]:
        stats: dict[str, dict[str, Any]] = {}
        for stream in sorted(self._streams):
            key = self._key(stream)
            if not await self.redis.exists(key):
                continue
            groups = {}
            for info in await self.redis.xinfo_groups(key):
                groups[info["name"]] = {"pending": int(info["pending"]), "lag": await self._lag(key, info)}
            stats[stream] = {"length": int(await self.redis.xlen(key)), "groups": groups}
        return stats


def _decode(raw: dict[str, Any]) -> dict[str, Any]:
    """Our entries carry one JSON field; entries added by other tools are taken as they are."""
    data = raw.get("data")
    if isinstance(data, str) and len(raw) == 1:
        try:
            decoded = json.loads(data)
        except ValueError:
            return dict(raw)
        if isinstance(decoded, dict):
            return decoded
    return dict(raw)


def _stream_entries(reply: Any) -> list[tuple[str, dict[str, Any]]]:
    """XREADGROUP reply as (id, fields), whichever shape this redis-py returns."""
    if not reply:
        return []
    per_stream = reply.values() if isinstance(reply, dict) else (entries for _, entries in reply)
    out: list[tuple[str, dict[str, Any]]] = []
    for entries in per_stream:
        if entries and isinstance(entries[0], list):  # RESP3 shape: [[entries]]
            entries = entries[0]
        out.extend((entry_id, raw) for entry_id, raw in entries if raw is not None)
    return out
