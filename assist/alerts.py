"""Supervisor alerts: raised once per condition episode, never once per utterance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assist.compliance import ComplianceAlert
from assist.config import AlertSettings


@dataclass(frozen=True, slots=True)
class SupervisorAlert:
    kind: str
    severity: str
    message: str
    timestamp: float
    rule_id: str | None = None

    def to_payload(self, call_id: str, agent_id: str, sequence: int) -> dict[str, Any]:
        return {
            "type": "alert",
            "alert_id": f"{call_id}:{sequence}",
            "call_id": call_id,
            "agent_id": agent_id,
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "timestamp": round(self.timestamp, 3),
            "rule_id": self.rule_id,
        }


@dataclass
class AlertTracker:
    settings: AlertSettings
    declining_since: float | None = None
    declining_alerted: bool = False
    negative_active: bool = False
    breached_rules: set[str] = field(default_factory=set)

    def on_customer_sentiment(
        self, compound: float, trend: str, recent_mean: float, call_time: float
    ) -> list[SupervisorAlert]:
        alerts: list[SupervisorAlert] = []
        # A happy customer calming down to neutral is "declining" too; only alert when the
        # decline has left the customer no longer positive.
        if trend == "declining" and recent_mean < self.settings.declining_max_mean:
            if self.declining_since is None:
                self.declining_since = call_time
            elapsed = call_time - self.declining_since
            if not self.declining_alerted and elapsed > self.settings.declining_seconds:
                self.declining_alerted = True
                alerts.append(
                    SupervisorAlert(
                        "sentiment_declining",
                        "medium",
                        f"Customer sentiment declining for {elapsed:.0f} s",
                        call_time,
                    )
                )
        else:
            self.declining_since = None
            self.declining_alerted = False
        if compound < self.settings.negative_threshold and not self.negative_active:
            self.negative_active = True
            alerts.append(
                SupervisorAlert(
                    "negative_sentiment", "high", f"Customer very negative ({compound:+.2f})", call_time
                )
            )
        elif compound > self.settings.negative_reset:
            self.negative_active = False
        return alerts

    def on_compliance(self, alert: ComplianceAlert) -> list[SupervisorAlert]:
        if alert.severity != "high" or alert.resolved or alert.rule_id in self.breached_rules:
            return []
        self.breached_rules.add(alert.rule_id)
        return [
            SupervisorAlert(
                "compliance_breach", "high", alert.message, alert.timestamp, rule_id=alert.rule_id
            )
        ]
