"""Input checks that name the offending field: types and ranges (pydantic), then the checks
that need the configuration or the known agents (language, tier, previous agent)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from routing.config import RoutingConfig
from routing.errors import InvalidInput
from routing.model import AgentProfile, AgentStatus, CallerProfile

AGENT_UPDATE_FIELDS = {"status", "call_id", "wrap_up_s"}
MAX_WAIT_START_AGE_S = 86_400.0
CLOCK_SKEW_S = 5.0


def parse(model: type[BaseModel], data: Any) -> Any:
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise InvalidInput(f"{field}: {first['msg']}" if field else first["msg"], field=field) from None


def check_language(code: str, config: RoutingConfig, field: str) -> None:
    if code not in config.languages:
        raise InvalidInput(f"unknown language '{code}' (use an ISO 639-1 code, e.g. 'en')", field=field)


def caller(data: Any, config: RoutingConfig, known_agent: Any, now: float) -> CallerProfile:
    """A caller profile from JSON; ``known_agent(agent_id) -> bool``."""
    profile: CallerProfile = parse(CallerProfile, data)
    check_language(profile.language, config, "language")
    if profile.tier not in config.tiers:
        raise InvalidInput(f"unknown tier '{profile.tier}' (one of {sorted(config.tiers)})", field="tier")
    if profile.previous_agent_id is not None and not known_agent(profile.previous_agent_id):
        raise InvalidInput(f"unknown agent '{profile.previous_agent_id}'", field="previous_agent_id")
    if profile.wait_start is not None and not (
        now - MAX_WAIT_START_AGE_S <= profile.wait_start <= now + CLOCK_SKEW_S
    ):
        raise InvalidInput("wait_start must be unix seconds within the last 24 hours", field="wait_start")
    return profile


def agent_update(
    agent_id: str, data: Any, current: AgentProfile | None, config: RoutingConfig
) -> tuple[AgentProfile | None, AgentStatus | None, str | None, float]:
    """(new profile or None if unchanged, status or None, call_id, wrap-up seconds)."""
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    if data.get("agent_id", agent_id) != agent_id:
        raise InvalidInput("agent_id in the body differs from the path", field="agent_id")
    fields = {k: v for k, v in data.items() if k not in AGENT_UPDATE_FIELDS and k != "agent_id"}
    status = None
    if data.get("status") is not None:
        try:
            status = AgentStatus(data["status"])
        except ValueError:
            choices = ", ".join(s.value for s in AgentStatus)
            raise InvalidInput(
                f"unknown status {data['status']!r} (one of {choices})", field="status"
            ) from None
    call_id = data.get("call_id")
    if call_id is not None and (not isinstance(call_id, str) or not call_id):
        raise InvalidInput("call_id must be a non-empty string", field="call_id")
    wrap = data.get("wrap_up_s", config.wrap_up_s)
    if isinstance(wrap, bool) or not isinstance(wrap, int | float) or not 0 <= wrap <= 3600:
        raise InvalidInput("wrap_up_s must be seconds between 0 and 3600", field="wrap_up_s")
    profile = None
    if fields or current is None:
        if current is None and "languages" not in fields:
            raise InvalidInput(
                f"unknown agent '{agent_id}': a new agent needs its languages", field="languages"
            )
        base = current.model_dump() if current is not None else {}
        profile = parse(AgentProfile, {**base, **fields, "agent_id": agent_id})
        for code in profile.languages:
            check_language(code, config, "languages")
        if profile == current:
            profile = None
    return profile, status, call_id, float(wrap)
