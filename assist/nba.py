"""Next-best action: one concrete suggestion from the playbook, the top article and compliance state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from assist.compliance import ComplianceAlert
from assist.config import PlaybookConfig
from assist.intent import UNKNOWN

VERIFICATION_RULE = "identity_verification"


@dataclass(frozen=True, slots=True)
class Suggestion:
    action: str
    reason: str


def next_best_action(
    playbooks: PlaybookConfig,
    *,
    intent: str,
    top_article_title: str | None,
    actionable: Sequence[ComplianceAlert],
    verification_pending: bool,
    sentiment: float,
    trend: str,
    recent_mean: float,
    negative_threshold: float,
) -> Suggestion:
    """Priority: fix a high-severity compliance gap, verify before account work,
    calm an upset customer, then follow the intent's playbook (with the best article).

    ``actionable`` holds what the agent can still act on: disclosures still missing and
    breaches raised since the previous suggestion (a breach's remedy is shown once)."""
    for alert in actionable:
        if alert.severity == "high" and not alert.resolved and alert.remedy:
            return Suggestion(alert.remedy, f"compliance:{alert.rule_id}")
    playbook = playbooks.intents.get(intent)
    if playbook and playbook.requires_verification and verification_pending:
        return Suggestion(playbooks.verify_first, f"compliance:{VERIFICATION_RULE}")
    if intent == UNKNOWN or playbook is None:
        action = playbooks.unknown
        if top_article_title:
            action = f"{action} Possibly relevant: “{top_article_title}”."
        reason = "intent:unknown"
    else:
        action = playbook.action
        if top_article_title:
            action = f"{action} {playbook.with_article.format(title=top_article_title)}"
        reason = f"playbook:{intent}"
    if sentiment < negative_threshold or (trend == "declining" and recent_mean < 0):
        calm = playbook.deescalate if playbook and playbook.deescalate else playbooks.deescalate
        return Suggestion(f"{calm} Then: {action[0].lower()}{action[1:]}", f"sentiment:{trend};{reason}")
    return Suggestion(action, reason)
