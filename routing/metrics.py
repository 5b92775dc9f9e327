"""Prometheus metrics for routing, registered in the app's registry."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from routing.router import Router

DECISION_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


class _RouterCollector(Collector):
    def __init__(self, router: Router) -> None:
        self.router = router

    def collect(self) -> Iterable[Metric]:
        router = self.router
        stats = router.engine.stats(time.time())
        yield GaugeMetricFamily(
            "callassist_routing_queued", "Calls waiting for an agent", value=stats["queued"]
        )
        yield GaugeMetricFamily(
            "callassist_routing_longest_wait_seconds", "Longest current wait", value=stats["longest_wait_s"]
        )
        yield GaugeMetricFamily(
            "callassist_routing_predicted_workload_seconds",
            "Predicted handle seconds of the waiting calls (escalated calls raised)",
            value=stats["predicted_workload_s"],
        )
        agents = GaugeMetricFamily("callassist_routing_agents", "Agents by status", labels=["status"])
        for status, count in stats["agents"].items():
            agents.add_metric([status], count)
        yield agents
        events = CounterMetricFamily("callassist_routing_events", "Routing events", labels=["event"])
        for event, count in sorted(router.counters.items()):
            events.add_metric([event], count)
        yield events


class RoutingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.decision_seconds = Histogram(
            "callassist_routing_decision_seconds",
            "Time to score and choose (engine only, no state round trip)",
            ["strategy"],
            buckets=DECISION_BUCKETS,
            registry=registry,
        )

    def observe_decision(self, strategy: str, seconds: float) -> None:
        self.decision_seconds.labels(strategy).observe(seconds)

    def attach(self, router: Router) -> None:
        self.registry.register(_RouterCollector(router))
