"""The bus on /metrics: message counts, reconnects, drops, and stream length, pending and lag.

Read at scrape time without I/O: counters live on the bus, stream figures are the bus's
latest sample (every few seconds on Redis; live in memory).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from server.bus import Bus
from server.metrics import counter_family, gauge_family

MESSAGE_EVENTS = ("published", "delivered", "sent", "received", "dropped", "undecodable")
STREAM_OPS = ("added", "acked", "claimed", "trimmed")


def bus_metrics(bus: Bus) -> Iterable[Metric]:
    counters = dict(bus.counters)
    messages = {event: float(counters.get(event, 0)) for event in MESSAGE_EVENTS}
    yield counter_family(
        "callassist_bus_messages",
        "Pub/sub messages: published (per channel), delivered (to local sockets), sent to and "
        "received from Redis, dropped (Redis unavailable or backlog full), undecodable",
        messages,
        "event",
    )
    streams = {op: float(counters.get(f"stream_{op}", 0)) for op in STREAM_OPS}
    yield counter_family(
        "callassist_bus_stream_entries",
        "Stream entries added, acked, claimed from dead consumers, trimmed while still pending",
        streams,
        "op",
    )
    yield CounterMetricFamily(
        "callassist_bus_reconnects",
        "Reconnections to Redis after a loss",
        value=counters.get("reconnects", 0),
    )
    yield gauge_family(
        "callassist_bus_connected", "Bus backend reachable (1) or not (0)", float(bus.connected)
    )
    yield gauge_family(
        "callassist_bus_backlog", "Messages waiting to be sent to Redis", float(getattr(bus, "backlog", 0))
    )
    length = GaugeMetricFamily("callassist_stream_length", "Entries in the stream", labels=["stream"])
    pending = GaugeMetricFamily(
        "callassist_stream_pending", "Entries read by the group but not acked yet", labels=["stream", "group"]
    )
    lag = GaugeMetricFamily(
        "callassist_stream_lag", "Entries not yet read by the group", labels=["stream", "group"]
    )
    for stream, stats in sorted(bus.stream_gauges().items()):
        length.add_metric([stream], stats["length"])
        for group, figures in sorted(stats["groups"].items()):
            pending.add_metric([stream, group], figures["pending"])
            lag.add_metric([stream, group], figures["lag"])
    yield from (length, pending, lag)
