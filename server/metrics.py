"""Prometheus metrics, one registry per app (no global state, so tests can build many apps)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5)


class _CallbackCollector(Collector):
    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return self._collect()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.connections = Gauge(
            "callassist_ws_connections", "Open WebSocket connections", ["endpoint"], registry=r
        )
        self.connections_total = Counter(
            "callassist_ws_accepted", "WebSocket connections accepted", ["endpoint"], registry=r
        )
        self.frames = Counter("callassist_frames_total", "Softphone frames received", ["type"], registry=r)
        self.protocol_errors = Counter(
            "callassist_protocol_errors_total", "Frames answered with an error", ["code"], registry=r
        )
        self.closes = Counter(
            "callassist_ws_closes_total", "Server-initiated closes", ["endpoint", "code"], registry=r
        )
        self.live_calls = Gauge("callassist_live_calls", "Calls in progress on this process", registry=r)
        self.calls_ended = Counter("callassist_calls_ended_total", "Calls ended", ["reason"], registry=r)
        self.assist_latency = Histogram(
            "callassist_assist_latency_seconds",
            "Final customer utterance received -> assist event published",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.analysis_latency = Histogram(
            "callassist_analysis_seconds",
            "Per-analysis time",
            ["analysis"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.analysis_failures = Counter(
            "callassist_analysis_failures_total",
            "Analyses that failed or timed out",
            ["analysis", "error"],
            registry=r,
        )
        self.batch_size = Histogram(
            "callassist_embed_batch_size",
            "Utterances per embedding batch",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self.batch_seconds = Histogram(
            "callassist_embed_batch_seconds", "Embedding batch time", buckets=LATENCY_BUCKETS, registry=r
        )
        self.outbox_dropped = Counter(
            "callassist_outbox_dropped_total", "Stale messages shed by backpressure", ["endpoint"], registry=r
        )
        self.store_writes = Counter(
            "callassist_store_writes_total", "Call records written", ["result"], registry=r
        )

        self.auth_rejections = Counter(
            "callassist_auth_rejections_total",
            "Requests and WebSocket handshakes refused by the security guard",
            ["reason"],
            registry=r,
        )
        self.limit_rejections = Counter(
            "callassist_limit_rejections_total",
            "Frames or connections refused by a limit",
            ["limit"],
            registry=r,
        )
        self.gc_pauses = Histogram(
            "callassist_gc_pause_seconds",
            "Python garbage-collection passes (they stop the event loop)",
            ["generation"],
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=r,
        )
        self.gc_collected = Counter(
            "callassist_gc_collected_objects",
            "Unreachable objects freed by garbage-collection passes (cycles refcounting missed)",
            ["generation"],
            registry=r,
        )
        self.retention_purged = Counter(
            "callassist_retention_purged_total", "Rows removed by the retention purge", ["table"], registry=r
        )

    def add_collector(self, collect: Callable[[], Iterable[Metric]]) -> None:
        """Register values read at scrape time (bus counters, queue depths)."""
        self.registry.register(_CallbackCollector(collect))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def counter_family(name: str, doc: str, values: dict[str, float], label: str) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def gauge_family(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class GcPauseTimer:
    """A ``gc.callbacks`` hook observing every collection pass; register while the app runs."""

    def __init__(self, histogram: Histogram, collected: Counter) -> None:
        self.histogram = histogram
        self.collected = collected
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation = str(info["generation"])
            self.histogram.labels(generation).observe(time.perf_counter() - self._started)
            self.collected.labels(generation).inc(info["collected"])
