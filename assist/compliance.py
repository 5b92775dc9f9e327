"""Compliance rules checked on every final utterance of a call (pure state machine).

Rule types (configured in the compliance YAML):
- required disclosures with a window: said within N seconds of call time, said before a
  trigger (e.g. identity verification before account details), or said by the end;
  a missing disclosure alerts once, when its window has passed, and is marked resolved
  if the agent says it late;
- forbidden phrases (unauthorised promises);
- hold without permission;
- personal data read aloud by the agent (card numbers confirmed by Luhn).

Matching is by meaning (cosine similarity of the utterance embedding to the rule's
exemplars, computed once in the embedding worker) or by regular expression, so rules
still fire when the embedder is unavailable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from assist.config import ComplianceConfig, Matcher
from assist.pii import find_pii

RECENT_BREACH_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class ComplianceAlert:
    rule_id: str
    kind: str
    severity: str
    message: str
    timestamp: float
    utterance_id: str | None = None
    resolved: bool = False
    remedy: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "timestamp": round(self.timestamp, 3),
            "utterance_id": self.utterance_id,
            "resolved": self.resolved,
        }


@dataclass(frozen=True, slots=True)
class HoldEvent:
    timestamp: float
    permission_asked: bool
    utterance_id: str | None


class CompiledMatcher:
    def __init__(self, key: str, spec: Matcher, default_threshold: float) -> None:
        self.key = key
        self.patterns = [re.compile(p, re.IGNORECASE) for p in spec.patterns]
        self.exemplars = list(spec.exemplars)
        self.threshold = spec.threshold if spec.threshold is not None else default_threshold

    def matches(self, text: str, scores: Mapping[str, float] | None) -> bool:
        if any(p.search(text) for p in self.patterns):
            return True
        return bool(scores) and scores.get(self.key, -1.0) >= self.threshold  # type: ignore[union-attr]


class CompliancePolicy:
    """Compiled rules, shared by every call. ``exemplar_groups`` feeds the embedding worker."""

    def __init__(self, config: ComplianceConfig) -> None:
        self.config = config
        t = config.semantic_threshold
        self.disclosures = [
            (rule, CompiledMatcher(f"disclosure:{rule.id}", rule, t)) for rule in config.required_disclosures
        ]
        self.triggers = {
            name: CompiledMatcher(f"trigger:{name}", spec, t) for name, spec in config.triggers.items()
        }
        self.forbidden = [
            (rule, CompiledMatcher(f"forbidden:{rule.id}", rule, t)) for rule in config.forbidden_phrases
        ]
        self.hold = config.hold
        self.hold_matcher = CompiledMatcher("hold:hold", config.hold.hold, t) if config.hold else None
        self.permission_matcher = (
            CompiledMatcher("hold:permission", config.hold.permission, t) if config.hold else None
        )

    def exemplar_groups(self) -> dict[str, list[str]]:
        matchers = (
            [m for _, m in self.disclosures] + list(self.triggers.values()) + [m for _, m in self.forbidden]
        )
        matchers += [m for m in (self.hold_matcher, self.permission_matcher) if m is not None]
        return {m.key: m.exemplars for m in matchers if m.exemplars}

    def monitor(self) -> ComplianceMonitor:
        return ComplianceMonitor(self)


@dataclass
class ComplianceMonitor:
    policy: CompliancePolicy
    call_time: float = 0.0
    satisfied: dict[str, float] = field(default_factory=dict)
    missing: dict[str, ComplianceAlert] = field(default_factory=dict)
    breaches: list[ComplianceAlert] = field(default_factory=list)
    holds: list[HoldEvent] = field(default_factory=list)
    last_permission_at: float | None = None

    def observe(
        self,
        speaker: str,
        text: str,
        timestamp: float,
        utterance_id: str | None,
        scores: Mapping[str, float] | None,
    ) -> list[ComplianceAlert]:
        self.call_time = max(self.call_time, timestamp)
        alerts: list[ComplianceAlert] = []
        if speaker == "agent":
            alerts += self._agent_utterance(text, timestamp, utterance_id, scores)
        alerts += self._windows_passed(utterance_id)
        return alerts

    def finish(self) -> list[ComplianceAlert]:
        """End of call: disclosures due by the end (or within a window the call never
        reached) and still unsaid are now missing. A 'before <trigger>' disclosure is only
        owed if its trigger happened, which raised it already."""
        alerts = []
        for rule, _ in self.policy.disclosures:
            owed = rule.window.at_end or rule.window.within_seconds is not None
            if owed and rule.id not in self.satisfied and rule.id not in self.missing:
                alerts.append(self._raise_missing(rule, None))
        return alerts

    def outstanding(self) -> list[ComplianceAlert]:
        """What the agent should still see: unresolved missing items and recent breaches."""
        recent = [b for b in self.breaches if self.call_time - b.timestamp <= RECENT_BREACH_SECONDS]
        unresolved = [a for a in self.missing.values() if not a.resolved]
        return sorted(unresolved + recent, key=_severity_order)

    def all_alerts(self) -> list[ComplianceAlert]:
        return sorted(list(self.missing.values()) + self.breaches, key=lambda a: a.timestamp)

    def is_satisfied(self, rule_id: str) -> bool:
        return rule_id in self.satisfied

    def has_rule(self, rule_id: str) -> bool:
        return any(rule.id == rule_id for rule, _ in self.policy.disclosures)

    # -- internals

    def _agent_utterance(
        self, text: str, timestamp: float, utterance_id: str | None, scores: Mapping[str, float] | None
    ) -> list[ComplianceAlert]:
        alerts: list[ComplianceAlert] = []
        for rule, matcher in self.policy.disclosures:
            if rule.id not in self.satisfied and matcher.matches(text, scores):
                self.satisfied[rule.id] = timestamp
                late = self.missing.get(rule.id)
                if late and not late.resolved:
                    self.missing[rule.id] = replace(late, resolved=True)
                    alerts.append(self.missing[rule.id])
        for name, trigger in self.policy.triggers.items():
            if not trigger.matches(text, scores):
                continue
            for rule, _ in self.policy.disclosures:
                if (
                    rule.window.before == name
                    and rule.id not in self.satisfied
                    and rule.id not in self.missing
                ):
                    alerts.append(self._raise_missing(rule, utterance_id))
        for rule, matcher in self.policy.forbidden:
            if matcher.matches(text, scores):
                alerts.append(
                    self._breach(
                        rule.id, "forbidden_phrase", rule.severity, rule.message, rule.remedy, utterance_id
                    )
                )
        alerts += self._hold(text, timestamp, utterance_id, scores)
        pii = self.policy.config.pii
        if pii:
            kinds = sorted({m.kind for m in find_pii(text, pii.kinds)})
            if kinds:
                message = f"{pii.message} ({', '.join(k.replace('_', ' ') for k in kinds)})"
                alerts.append(
                    self._breach(pii.id, "pii_spoken", pii.severity, message, pii.remedy, utterance_id)
                )
        return alerts

    def _hold(
        self, text: str, timestamp: float, utterance_id: str | None, scores: Mapping[str, float] | None
    ) -> list[ComplianceAlert]:
        rule, hold, permission = self.policy.hold, self.policy.hold_matcher, self.policy.permission_matcher
        if rule is None or hold is None or permission is None:
            return []
        if self._asks_permission(text, scores):  # "may I place you on hold?" is a request, not a hold
            self.last_permission_at = timestamp
            return []
        if not hold.matches(text, scores):
            return []
        asked = (
            self.last_permission_at is not None
            and timestamp - self.last_permission_at <= rule.permission_window_seconds
        )
        self.holds.append(HoldEvent(timestamp, asked, utterance_id))
        self.last_permission_at = None
        if asked:
            return []
        return [
            self._breach(
                rule.id, "hold_without_permission", rule.severity, rule.message, rule.remedy, utterance_id
            )
        ]

    def _asks_permission(self, text: str, scores: Mapping[str, float] | None) -> bool:
        """Both kinds of sentence are about holding; by meaning, a permission request must
        also be closer to the permission exemplars than to the hold exemplars."""
        permission, hold = self.policy.permission_matcher, self.policy.hold_matcher
        assert permission is not None and hold is not None
        if any(p.search(text) for p in permission.patterns):
            return True
        if not scores:
            return False
        asked = scores.get(permission.key, -1.0)
        return asked >= permission.threshold and asked > scores.get(hold.key, -1.0)

    def _windows_passed(self, utterance_id: str | None) -> list[ComplianceAlert]:
        alerts = []
        for rule, _ in self.policy.disclosures:
            within = rule.window.within_seconds
            if (
                within is not None
                and self.call_time > within
                and rule.id not in self.satisfied
                and rule.id not in self.missing
            ):
                alerts.append(self._raise_missing(rule, utterance_id))
        return alerts

    def _raise_missing(self, rule: Any, utterance_id: str | None) -> ComplianceAlert:
        alert = ComplianceAlert(
            rule.id,
            "missing_disclosure",
            rule.severity,
            rule.message,
            self.call_time,
            utterance_id,
            remedy=rule.remedy,
        )
        self.missing[rule.id] = alert
        return alert

    def _breach(
        self, rule_id: str, kind: str, severity: str, message: str, remedy: str, utterance_id: str | None
    ) -> ComplianceAlert:
        alert = ComplianceAlert(rule_id, kind, severity, message, self.call_time, utterance_id, remedy=remedy)
        self.breaches.append(alert)
        return alert


_SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}


def _severity_order(alert: ComplianceAlert) -> tuple[int, float]:
    return (_SEVERITY_RANK.get(alert.severity, 3), -alert.timestamp)
