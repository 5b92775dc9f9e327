"""Who may call what: one table, (path template, method) -> roles.

Every route the app serves must be listed (``check_policy`` fails the app's start and a test
fails otherwise), so a new endpoint cannot slip through unguarded. ``PUBLIC`` routes need no
token. Agent scoping that depends on the path is generic: an ``agent`` token only passes a
route with an ``{agent_id}`` parameter when it is its own id. Scoping that depends on data
(whose call is this?) is done by the handler with ``principal_of``.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

PUBLIC = "public"
WS = "WS"

A, S, G, I, M = "admin", "supervisor", "agent", "integration", "metrics"  # noqa: E741

POLICY: dict[tuple[str, str], frozenset[str]] = {
    # pages and their static files carry no data and no secrets; the data is behind the API
    ("/", "GET"): frozenset({PUBLIC}),
    ("/agent", "GET"): frozenset({PUBLIC}),
    ("/supervisor", "GET"): frozenset({PUBLIC}),
    ("/kpis", "GET"): frozenset({PUBLIC}),
    ("/static", "GET"): frozenset({PUBLIC}),
    ("/healthz", "GET"): frozenset({PUBLIC}),
    ("/metrics", "GET"): frozenset({A, M}),
    # auth: the session endpoint checks the credential in its body itself
    ("/v1/auth/session", "POST"): frozenset({PUBLIC}),
    ("/v1/auth/session", "DELETE"): frozenset({PUBLIC}),
    ("/v1/auth/whoami", "GET"): frozenset({A, S, G, I, M}),
    ("/v1/auth/token", "POST"): frozenset({A, I}),
    # calls (agent: own calls only, filtered/checked by the handlers)
    ("/v1/calls", "GET"): frozenset({A, S, G}),
    ("/v1/calls/{call_id}", "GET"): frozenset({A, S, G}),
    ("/v1/live/calls", "GET"): frozenset({A, S, G}),
    ("/v1/demo/run", "POST"): frozenset({A}),
    ("/v1/calls/{call_id}", WS): frozenset({A, I}),
    ("/v1/agents/{agent_id}", WS): frozenset({A, G}),
    ("/v1/supervisor", WS): frozenset({A, S}),
    # assist feedback and supervisor alerts
    ("/v1/assist/feedback", "POST"): frozenset({A, G}),
    ("/v1/assist/adoption", "GET"): frozenset({A, S}),
    ("/v1/supervisor/alerts", "GET"): frozenset({A, S}),
    ("/v1/supervisor/alerts/{alert_id}/ack", "POST"): frozenset({A, S}),
    # knowledge base: everyone who assists reads it, only admin writes
    ("/v1/kb/articles", "GET"): frozenset({A, S, G}),
    ("/v1/kb/articles/{article_id}", "GET"): frozenset({A, S, G}),
    ("/v1/kb/articles/{article_id}", "PUT"): frozenset({A}),
    ("/v1/kb/articles/{article_id}", "DELETE"): frozenset({A}),
    ("/v1/kb/search", "POST"): frozenset({A, S, G}),
    ("/v1/kb/stats", "GET"): frozenset({A, S}),
    # routing: the CCaaS integration routes calls; admin manages agents
    ("/v1/routing/agents", "GET"): frozenset({A, S}),
    ("/v1/routing/agents/{agent_id}", "PUT"): frozenset({A}),
    ("/v1/routing/agents/{agent_id}", "GET"): frozenset({A, S, G}),
    ("/v1/routing/calls", "POST"): frozenset({A, I}),
    ("/v1/routing/calls/{call_id}", "GET"): frozenset({A, S, I}),
    ("/v1/routing/calls/{call_id}", "DELETE"): frozenset({A, I}),
    ("/v1/routing/calls/{call_id}/callback", "POST"): frozenset({A, I}),
    ("/v1/routing/queue", "GET"): frozenset({A, S, I}),
    # QA
    ("/v1/qa/scorecards", "GET"): frozenset({A, S}),
    ("/v1/qa/scorecards/{call_id}", "GET"): frozenset({A, S}),
    ("/v1/qa/distribution", "GET"): frozenset({A, S}),
    ("/v1/qa/agents/{agent_id}/coaching", "GET"): frozenset({A, S, G}),
    ("/v1/qa/calibration", "POST"): frozenset({A, S}),
    ("/v1/qa/calibration", "GET"): frozenset({A, S}),
    ("/v1/qa/rubric", "GET"): frozenset({A, S, G}),
    # workforce management
    ("/v1/wfm/staffing", "POST"): frozenset({A, S}),
    ("/v1/wfm/forecast", "GET"): frozenset({A, S}),
    # analytics and customer data
    ("/v1/analytics/kpis", "GET"): frozenset({A, S}),
    ("/v1/analytics/clusters", "GET"): frozenset({A, S}),
    ("/v1/analytics/repeats", "GET"): frozenset({A, S}),
    ("/v1/analytics/churn", "GET"): frozenset({A, S}),
    ("/v1/analytics/churn/{customer_id}", "GET"): frozenset({A, S}),
    ("/v1/analytics/alerts", "GET"): frozenset({A, S}),
    ("/v1/analytics/retention/cases", "GET"): frozenset({A, S}),
    ("/v1/analytics/status", "GET"): frozenset({A, S}),
    ("/v1/analytics/run", "POST"): frozenset({A}),
    ("/v1/analytics/roi", "GET"): frozenset({A, S}),
    ("/v1/analytics/roi", "POST"): frozenset({A, S}),
    ("/v1/customers/import", "POST"): frozenset({A, I}),
    ("/v1/customers/{customer_id}", "PUT"): frozenset({A, I}),
    ("/v1/customers/{customer_id}", "GET"): frozenset({A, S, I}),
}


# What a supervisor scoped to teams may use: endpoints filtered to its teams' calls, and
# reference data. Everything else a supervisor may see aggregates across teams: refused.
TEAM_SCOPED: frozenset[tuple[str, str]] = frozenset(
    {
        ("/v1/auth/whoami", "GET"),
        ("/v1/calls", "GET"),
        ("/v1/calls/{call_id}", "GET"),
        ("/v1/live/calls", "GET"),
        ("/v1/supervisor", WS),
        ("/v1/kb/articles", "GET"),
        ("/v1/kb/articles/{article_id}", "GET"),
        ("/v1/kb/search", "POST"),
        ("/v1/kb/stats", "GET"),
        ("/v1/qa/rubric", "GET"),
    }
)


def route_keys(route: BaseRoute) -> list[tuple[str, str]]:
    """The (path template, method) pairs one route serves (HEAD goes with GET)."""
    if isinstance(route, WebSocketRoute):
        return [(route.path, WS)]
    if isinstance(route, Mount):
        return [(route.path, "GET")]
    if isinstance(route, Route):
        return [(route.path, method) for method in sorted(route.methods or {"GET"}) if method != "HEAD"]
    raise TypeError(f"unknown route type {type(route).__name__}")


def unlisted(routes: Iterable[BaseRoute]) -> list[tuple[str, str]]:
    return [key for route in routes for key in route_keys(route) if key not in POLICY]


def check_policy(routes: Iterable[BaseRoute]) -> None:
    missing = unlisted(routes)
    if missing:
        raise RuntimeError(f"routes without an authorization policy in server/policy.py: {missing}")


def allowed(key: tuple[str, str], role: str | None) -> bool:
    roles = POLICY.get(key, frozenset())
    return PUBLIC in roles or (role is not None and role in roles)


ROLE_COLUMNS = ("admin", "supervisor", "agent", "integration", "metrics")


def markdown_table() -> str:
    """The policy as the table in docs/security.md (a test keeps the two identical)."""
    lines = [
        "| endpoint | " + " | ".join(ROLE_COLUMNS) + " |",
        "|---|" + "---|" * len(ROLE_COLUMNS),
    ]
    for (path, method), roles in sorted(POLICY.items()):
        label = f"`{'WebSocket' if method == WS else method} {path}{'/…' if path == '/static' else ''}`"
        if PUBLIC in roles:
            cells = ["public"] + [""] * (len(ROLE_COLUMNS) - 1)
        else:
            cells = ["yes" if role in roles else "—" for role in ROLE_COLUMNS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
