"""Authentication, roles, per-agent scoping, safe defaults and limits, against a real server.

``test_every_route_has_policy_and_case`` enumerates ``app.routes``: a new endpoint without a
policy in server/policy.py or a case in CASES below fails the suite.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from server.auth import ROLES, Authenticator, AuthError, Principal, check_bind, hash_key
from server.guard import RedactTokens
from server.policy import POLICY, PUBLIC, WS, route_keys
from tests.helpers import MS, RunningServer, Softphone, start_server

SECRET = "test-secret-" + "x" * 40
AGENT = "agent-a"
KEYS = {role: f"key-for-{role}" for role in ROLES}


def write_auth_file(path: Path) -> Path:
    entries = []
    for role, key in KEYS.items():
        entry: dict[str, Any] = {"name": f"{role}-key", "role": role, "sha256": hash_key(key)}
        if role == "agent":
            entry["agent_id"] = AGENT
        entries.append(entry)
    path.write_text(json.dumps({"api_keys": entries}))  # JSON is YAML
    return path


@pytest.fixture(scope="module")
def secure(
    embedder: Any, demo_config: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    from server.app import create_app
    from server.settings import Settings

    tmp = tmp_path_factory.mktemp("secure")
    settings = Settings(
        store_path=tmp / "calls.db",
        process_name="secure",
        auth_file=write_auth_file(tmp / "auth.yaml"),
        jwt_secret=SECRET,
    )
    server = start_server(create_app(settings, embedder=embedder, config=demo_config))
    yield server
    server.stop()


def bearer(role: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"} if role else {}


# ---------------------------------------------------------------------- every route, every role

# One request per (route template, method): a concrete path and a body that does no harm
# (most bodies are invalid on purpose: an allowed role gets 4xx-but-not-401/403, no side effect).
CASES: dict[tuple[str, str], dict[str, Any]] = {
    ("/", "GET"): {},
    ("/agent", "GET"): {},
    ("/supervisor", "GET"): {},
    ("/kpis", "GET"): {},
    ("/static", "GET"): {"path": "/static/widget.js"},
    ("/healthz", "GET"): {},
    ("/metrics", "GET"): {},
    ("/v1/auth/session", "POST"): {"body": "[]"},
    ("/v1/auth/session", "DELETE"): {},
    ("/v1/auth/whoami", "GET"): {},
    ("/v1/auth/token", "POST"): {"body": "[]"},
    ("/v1/calls", "GET"): {},
    ("/v1/calls/{call_id}", "GET"): {"path": "/v1/calls/no-such-call"},
    ("/v1/live/calls", "GET"): {},
    ("/v1/demo/run", "POST"): {"path": "/v1/demo/run?speed=1000"},  # 422 for admin: no replay
    ("/v1/calls/{call_id}", WS): {"path": "/v1/calls/authz-call"},
    ("/v1/agents/{agent_id}", WS): {"path": f"/v1/agents/{AGENT}"},
    ("/v1/supervisor", WS): {},
    ("/v1/assist/feedback", "POST"): {"body": "[]"},
    ("/v1/assist/adoption", "GET"): {},
    ("/v1/supervisor/alerts", "GET"): {},
    ("/v1/supervisor/alerts/{alert_id}/ack", "POST"): {
        "path": "/v1/supervisor/alerts/none/ack",
        "body": "[]",
    },
    ("/v1/kb/articles", "GET"): {},
    ("/v1/kb/articles/{article_id}", "GET"): {"path": "/v1/kb/articles/no-such"},
    ("/v1/kb/articles/{article_id}", "PUT"): {"path": "/v1/kb/articles/authz", "body": "[]"},
    ("/v1/kb/articles/{article_id}", "DELETE"): {"path": "/v1/kb/articles/no-such"},
    ("/v1/kb/search", "POST"): {"body": "[]"},
    ("/v1/kb/stats", "GET"): {},
    ("/v1/routing/agents", "GET"): {},
    ("/v1/routing/agents/{agent_id}", "PUT"): {"path": f"/v1/routing/agents/{AGENT}", "body": "[]"},
    ("/v1/routing/agents/{agent_id}", "GET"): {"path": f"/v1/routing/agents/{AGENT}"},
    ("/v1/routing/calls", "POST"): {"body": "[]"},
    ("/v1/routing/calls/{call_id}", "GET"): {"path": "/v1/routing/calls/none"},
    ("/v1/routing/calls/{call_id}", "DELETE"): {"path": "/v1/routing/calls/none"},
    ("/v1/routing/calls/{call_id}/callback", "POST"): {
        "path": "/v1/routing/calls/none/callback",
        "body": "[]",
    },
    ("/v1/routing/queue", "GET"): {},
    ("/v1/qa/scorecards", "GET"): {},
    ("/v1/qa/scorecards/{call_id}", "GET"): {"path": "/v1/qa/scorecards/none"},
    ("/v1/qa/distribution", "GET"): {},
    ("/v1/qa/agents/{agent_id}/coaching", "GET"): {"path": f"/v1/qa/agents/{AGENT}/coaching"},
    ("/v1/qa/calibration", "POST"): {"body": "[]"},
    ("/v1/qa/calibration", "GET"): {},
    ("/v1/qa/rubric", "GET"): {},
    ("/v1/wfm/staffing", "POST"): {"body": "[]"},
    ("/v1/wfm/forecast", "GET"): {"path": "/v1/wfm/forecast?days=0"},
    ("/v1/analytics/kpis", "GET"): {},
    ("/v1/analytics/clusters", "GET"): {},
    ("/v1/analytics/repeats", "GET"): {},
    ("/v1/analytics/churn", "GET"): {},
    ("/v1/analytics/churn/{customer_id}", "GET"): {"path": "/v1/analytics/churn/none"},
    ("/v1/analytics/alerts", "GET"): {},
    ("/v1/analytics/retention/cases", "GET"): {},
    ("/v1/analytics/status", "GET"): {},
    ("/v1/analytics/run", "POST"): {"body": "[]"},
    ("/v1/analytics/roi", "GET"): {"path": "/v1/analytics/roi?no_such_input=1"},
    ("/v1/analytics/roi", "POST"): {"body": "[]"},
    ("/v1/customers/import", "POST"): {"path": "/v1/customers/import?format=json", "body": "{"},
    ("/v1/customers/{customer_id}", "PUT"): {"path": "/v1/customers/authz", "body": "[]"},
    ("/v1/customers/{customer_id}", "GET"): {"path": "/v1/customers/none"},
}


def test_every_route_has_policy_and_case(secure: RunningServer) -> None:
    keys = [key for route in secure.app.routes for key in route_keys(route)]
    assert len(keys) == len(set(keys))
    assert [k for k in keys if k not in POLICY] == [], "add these routes to server/policy.py"
    assert [k for k in keys if k not in CASES] == [], "add an authorization case to tests/test_security.py"
    assert set(POLICY) == set(keys), "server/policy.py lists routes the app does not serve"


async def _http_status(client: httpx.AsyncClient, key: tuple[str, str], role: str | None) -> int:
    case = CASES[key]
    path, method = case.get("path", key[0]), key[1]
    content = case.get("body")
    headers = {**bearer(role), **({"Content-Type": "application/json"} if content else {})}
    response = await client.request(method, path, content=content, headers=headers)
    return response.status_code


async def _ws_status(server: RunningServer, key: tuple[str, str], role: str | None) -> int:
    """101 when the handshake succeeded, else the HTTP status the server refused it with."""
    path = CASES[key].get("path", key[0])
    protocols = ["callassist.v1", f"bearer.{KEYS[role]}"] if role else None
    try:
        async with websockets.connect(f"{server.ws}{path}", subprotocols=protocols) as sock:  # type: ignore[arg-type]
            assert sock.subprotocol == ("callassist.v1" if role else None)  # the token is never echoed
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


@pytest.mark.parametrize("key", sorted(POLICY), ids=lambda k: f"{k[1]} {k[0]}")
async def test_route_authorization(secure: RunningServer, key: tuple[str, str]) -> None:
    """Each role the policy lists passes (any status but 401/403); every other role gets 403
    and an anonymous caller 401 (public routes pass everyone)."""
    roles = POLICY[key]
    results: dict[str | None, int] = {}
    async with httpx.AsyncClient(base_url=secure.http, timeout=30) as client:
        for role in (None, *ROLES):
            results[role] = await (
                _ws_status(secure, key, role) if key[1] == WS else _http_status(client, key, role)
            )
    for role, status in results.items():
        if PUBLIC in roles or (role is not None and role in roles):
            assert status not in (401, 403), (role, status)
        else:
            assert status == (401 if role is None else 403), (role, status)


async def test_agent_token_is_bound_to_its_agent(secure: RunningServer) -> None:
    other = "agent-b"
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(f"{secure.ws}/v1/agents/{other}", subprotocols=["bearer." + KEYS["agent"]])  # type: ignore[list-item]
    assert refused.value.response.status_code == 403
    async with httpx.AsyncClient(base_url=secure.http, headers=bearer("agent")) as client:
        assert (await client.get(f"/v1/qa/agents/{other}/coaching")).status_code == 403
        assert (await client.get(f"/v1/routing/agents/{other}")).status_code == 403
        assert (await client.get("/v1/calls", params={"agent_id": other})).status_code == 403
        feedback = {
            "agent_id": other,
            "call_id": "x",
            "utterance_id": "u",
            "target": "suggestion",
            "used": True,
        }
        assert (await client.post("/v1/assist/feedback", json=feedback)).status_code == 403


async def test_agent_sees_only_own_calls(secure: RunningServer) -> None:
    """Two stored calls of two agents: the agent token lists and reads only its own."""
    integration = ["callassist.v1", f"bearer.{KEYS['integration']}"]
    for call_id, agent in (("scoped-own", AGENT), ("scoped-other", "agent-b")):
        async with websockets.connect(f"{secure.ws}/v1/calls/{call_id}", subprotocols=integration) as sock:  # type: ignore[arg-type]
            await sock.send(json.dumps({"type": "start", "agent_id": agent}))
            assert json.loads(await sock.recv())["type"] == "started"
            await sock.send(json.dumps({"type": "end"}))
            assert json.loads(await sock.recv())["type"] == "ended"
    async with httpx.AsyncClient(base_url=secure.http) as client:
        mine = (await client.get("/v1/calls", headers=bearer("agent"))).json()["calls"]
        everyone = (await client.get("/v1/calls", headers=bearer("supervisor"))).json()["calls"]
        assert {c["call_id"] for c in mine} >= {"scoped-own"} and {c["agent_id"] for c in mine} == {AGENT}
        assert {"scoped-own", "scoped-other"} <= {c["call_id"] for c in everyone}
        assert (await client.get("/v1/calls/scoped-own", headers=bearer("agent"))).status_code == 200
        assert (await client.get("/v1/calls/scoped-other", headers=bearer("agent"))).status_code == 404
        assert (await client.get("/v1/calls/scoped-other", headers=bearer("supervisor"))).status_code == 200


# ---------------------------------------------------------------------- credentials


def _jwt(claims: dict[str, Any], secret: str = SECRET) -> str:
    now = int(time.time())
    return jwt.encode({"iat": now, "exp": now + 60, "sub": "t", **claims}, secret, algorithm="HS256")


async def test_credential_forms(secure: RunningServer) -> None:
    """API key or JWT; Authorization header, ?token= or subprotocol; expired/forged refused."""
    agent_jwt = _jwt({"role": "agent", "agent_id": AGENT})
    async with httpx.AsyncClient(base_url=secure.http) as client:
        who = (await client.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {agent_jwt}"})).json()
        assert who["principal"]["role"] == "agent" and who["principal"]["agent_id"] == AGENT
        for bad in (
            _jwt({"role": "admin"}, secret="another-secret-" + "y" * 40),  # forged
            _jwt({"role": "admin", "exp": int(time.time()) - 120}),  # expired (beyond the leeway)
            _jwt({"role": "root"}),  # unknown role
            _jwt({"role": "agent"}),  # agent without agent id
            jwt.encode({"role": "admin", "sub": "x", "iat": 1, "exp": 2**40}, SECRET, algorithm="HS384"),
            "not-a-key",
        ):
            response = await client.get("/v1/auth/whoami", headers={"Authorization": f"Bearer {bad}"})
            assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
    async with websockets.connect(f"{secure.ws}/v1/agents/{AGENT}?token={agent_jwt}") as sock:
        assert json.loads(await sock.recv())["type"] == "snapshot"
    headers = {"Authorization": f"Bearer {KEYS['supervisor']}"}
    async with websockets.connect(f"{secure.ws}/v1/supervisor", additional_headers=headers) as sock:
        assert json.loads(await sock.recv())["type"] == "snapshot"
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(f"{secure.ws}/v1/supervisor?token=wrong")
    assert refused.value.response.status_code == 401
    async with httpx.AsyncClient(base_url=secure.http) as client:
        metrics = (await client.get("/metrics", headers=bearer("metrics"))).text
    assert 'callassist_auth_rejections_total{reason="unauthenticated"}' in metrics


async def test_browser_session_cookie(secure: RunningServer) -> None:
    """POST /v1/auth/session -> HttpOnly SameSite=Strict cookie; it authenticates API and WebSocket."""
    async with httpx.AsyncClient(base_url=secure.http) as client:
        assert (await client.post("/v1/auth/session", json={"credential": "wrong"})).status_code == 401
        response = await client.post("/v1/auth/session", json={"credential": KEYS["supervisor"]})
        assert response.status_code == 200 and response.json()["principal"]["role"] == "supervisor"
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert KEYS["supervisor"] not in cookie
        assert (await client.get("/v1/live/calls")).status_code == 200  # the cookie jar sends it
        value = client.cookies["callassist_session"]
        origin = {"Origin": secure.http, "Cookie": f"callassist_session={value}"}
        async with websockets.connect(f"{secure.ws}/v1/supervisor", additional_headers=origin) as sock:
            assert json.loads(await sock.recv())["type"] == "snapshot"
        assert (await client.delete("/v1/auth/session")).status_code == 204
        assert (await client.get("/v1/live/calls")).status_code == 401


async def test_minted_agent_token(secure: RunningServer) -> None:
    """An integration key mints short-lived agent tokens only; admin may mint any role."""
    async with httpx.AsyncClient(base_url=secure.http) as client:
        minted = await client.post(
            "/v1/auth/token", json={"agent_id": AGENT, "ttl_seconds": 120}, headers=bearer("integration")
        )
        assert minted.status_code == 200, minted.text
        token = minted.json()["token"]
        assert minted.json()["expires_at"] <= time.time() + 121
        denied = await client.post("/v1/auth/token", json={"role": "admin"}, headers=bearer("integration"))
        assert denied.status_code == 403
        too_long = await client.post(
            "/v1/auth/token", json={"agent_id": AGENT, "ttl_seconds": 10**7}, headers=bearer("admin")
        )
        assert too_long.status_code == 422
        sup = await client.post("/v1/auth/token", json={"role": "supervisor"}, headers=bearer("admin"))
        assert sup.status_code == 200
    async with websockets.connect(f"{secure.ws}/v1/agents/{AGENT}", subprotocols=["callassist.v1", f"bearer.{token}"]) as sock:  # type: ignore[list-item]  # fmt: skip
        assert json.loads(await sock.recv())["type"] == "snapshot"


async def test_origin_allowlist(secure: RunningServer) -> None:
    """Cross-site WebSocket hijacking: a foreign Origin is refused even with a valid cookie/token."""
    protocols = ["callassist.v1", f"bearer.{KEYS['supervisor']}"]
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(f"{secure.ws}/v1/supervisor", subprotocols=protocols, origin="http://evil.example")  # type: ignore[arg-type]  # fmt: skip
    assert refused.value.response.status_code == 403
    async with websockets.connect(f"{secure.ws}/v1/supervisor", subprotocols=protocols, origin=secure.http) as sock:  # type: ignore[arg-type]  # fmt: skip
        assert json.loads(await sock.recv())["type"] == "snapshot"


async def test_security_headers_and_closed_cors(secure: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=secure.http) as client:
        page = await client.get("/agent")
        api = await client.get("/v1/calls", headers=bearer("admin"))
        preflight = await client.options(
            "/v1/calls",
            headers={"Origin": "http://elsewhere.example", "Access-Control-Request-Method": "GET"},
        )
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in page.text  # no inline script: the CSP holds
    assert api.headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in preflight.headers


async def test_cors_when_configured(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(cors_origins=["https://desk.example"])
    async with httpx.AsyncClient(base_url=server.http) as client:
        allowed = await client.options(
            "/v1/calls", headers={"Origin": "https://desk.example", "Access-Control-Request-Method": "GET"}
        )
        other = await client.options(
            "/v1/calls", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
        )
    assert allowed.headers["access-control-allow-origin"] == "https://desk.example"
    assert "access-control-allow-origin" not in other.headers


# ---------------------------------------------------------------------- safe defaults


async def test_open_mode_is_loopback_only(server_factory) -> None:  # type: ignore[no-untyped-def]
    """Open dev mode: everything works on loopback; a rebinding Host or foreign Origin is refused."""
    server = server_factory()
    async with httpx.AsyncClient(base_url=server.http) as client:
        who = (await client.get("/v1/auth/whoami")).json()
        assert who["mode"] == "open" and who["principal"]["role"] == "admin"
        rebound = await client.get("/v1/calls", headers={"Host": "attacker.example:8000"})
        assert rebound.status_code == 403
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(f"{server.ws}/v1/supervisor", origin="http://attacker.example")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403


def test_check_bind() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        check_bind(host, auth_enabled=False)
    check_bind("0.0.0.0", auth_enabled=True)
    with pytest.raises(AuthError, match="refusing to listen on 0.0.0.0"):
        check_bind("0.0.0.0", auth_enabled=False)


def test_serve_refuses_public_bind_without_auth(tmp_path: Path) -> None:
    """`callassist serve --host 0.0.0.0` with no credentials exits non-zero before binding."""
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr


def test_auth_file_errors_are_clear(tmp_path: Path) -> None:
    from server.settings import Settings

    bad = tmp_path / "auth.yaml"
    bad.write_text("api_keys:\n  - {name: a, role: agent, sha256: " + "a" * 64 + "}\n")
    with pytest.raises(AuthError, match="needs an agent_id"):
        Authenticator.from_settings(Settings(auth_file=bad))
    bad.write_text("api_keys:\n  - {name: s, role: supervisor, queues: [q1], sha256: " + "a" * 64 + "}\n")
    with pytest.raises(AuthError, match="queue scoping is not implemented"):
        Authenticator.from_settings(Settings(auth_file=bad))
    bad.write_text("api_keys:\n  - {name: i, role: integration, teams: [t1], sha256: " + "a" * 64 + "}\n")
    with pytest.raises(AuthError, match="only role 'supervisor' is scoped to teams"):
        Authenticator.from_settings(Settings(auth_file=bad))
    with pytest.raises(AuthError, match="at least 32"):
        Authenticator.from_settings(Settings(jwt_secret="short"))


def test_tokens_are_redacted_from_logs() -> None:
    import logging

    record = logging.LogRecord(
        "uvicorn.error", logging.INFO, "", 0, '%s - "WebSocket %s" [accepted]', ("1.2.3.4", "/v1/x?a=1&token=sekrit"), None
    )  # fmt: skip
    RedactTokens().filter(record)
    assert "sekrit" not in record.getMessage() and "token=[redacted]" in record.getMessage()


def test_api_key_hash_and_principal() -> None:
    auth = Authenticator(api_keys=[], jwt_secret=SECRET)
    token, _ = auth.mint(Principal("desk", "agent", AGENT), 60)
    principal = auth.authenticate(token)
    assert principal is not None and principal.agent_id == AGENT and principal.via == "jwt"
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# ---------------------------------------------------------------------- limits


async def _metrics(server: RunningServer, headers: dict[str, str] | None = None) -> str:
    async with httpx.AsyncClient(base_url=server.http) as client:
        return (await client.get("/metrics", headers=headers)).text


async def test_frame_rate_limit(server_factory) -> None:  # type: ignore[no-untyped-def]
    """Over the rate: error frame 'rate_limited' (frame not processed); persisting: close 1008."""
    server = server_factory(frame_rate_per_second=2, frame_rate_burst=3, rate_limited_close_after=5)
    async with Softphone(server.ws, "rate-1") as phone:
        for _ in range(4):
            await phone.send({"type": "ping"})
        codes = []
        for _ in range(4):
            try:
                codes.append((await phone.recv()).get("code"))
            except TimeoutError:
                break
        assert "rate_limited" in codes
        for _ in range(10):
            await phone.send({"type": "ping"})
        with pytest.raises(websockets.ConnectionClosed) as closed:
            for _ in range(20):
                await phone.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    metrics = await _metrics(server)
    assert 'callassist_limit_rejections_total{limit="frame_rate"}' in metrics


async def test_utterances_per_call_limit(server_factory) -> None:  # type: ignore[no-untyped-def]
    """Over the limit: error 'call_limit', the utterance is not analysed, the call is not lost."""
    server = server_factory(max_utterances_per_call=2)
    async with Softphone(server.ws, "limit-1") as phone:
        await phone.start("agent-limit")
        for i in range(3):
            await phone.say("customer", f"hello number {i}", float(i + 1), f"u-{i}")
        error = await phone.recv(timeout=5000 * MS)
        while error.get("type") != "error":
            error = await phone.recv(timeout=5000 * MS)
        assert error["code"] == "call_limit" and error["utterance_id"] == "u-2"
        ack = await phone.end()
    assert ack["type"] == "ended" and ack["utterances"] == 2
    metrics = await _metrics(server)
    assert 'callassist_limit_rejections_total{limit="utterances_per_call"} 1.0' in metrics


async def test_connection_limits(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Per credential: 429 before accept; in total: 503 before accept."""
    server = server_factory(
        auth_file=write_auth_file(tmp_path / "auth.yaml"), max_connections=3, max_connections_per_token=2
    )
    sup = ["callassist.v1", f"bearer.{KEYS['supervisor']}"]
    adm = ["callassist.v1", f"bearer.{KEYS['admin']}"]
    url = f"{server.ws}/v1/supervisor"
    first = await websockets.connect(url, subprotocols=sup)  # type: ignore[arg-type]
    second = await websockets.connect(url, subprotocols=sup)  # type: ignore[arg-type]
    with pytest.raises(InvalidStatus) as per_token:
        await websockets.connect(url, subprotocols=sup)  # type: ignore[arg-type]
    assert per_token.value.response.status_code == 429
    third = await websockets.connect(url, subprotocols=adm)  # type: ignore[arg-type]
    with pytest.raises(InvalidStatus) as total:
        await websockets.connect(url, subprotocols=adm)  # type: ignore[arg-type]
    assert total.value.response.status_code == 503
    await first.close()
    await asyncio.sleep(200 * MS)
    again = await websockets.connect(url, subprotocols=sup)  # type: ignore[arg-type]
    for sock in (second, third, again):
        await sock.close()
    metrics = await _metrics(server, bearer("metrics"))
    assert 'callassist_limit_rejections_total{limit="connections_per_token"} 1.0' in metrics
    assert 'callassist_limit_rejections_total{limit="connections_total"} 1.0' in metrics


async def test_integration_key_is_bounded_by_the_total_only(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A CCaaS integration opens one socket per live call: the per-credential limit is not for it."""
    server = server_factory(
        auth_file=write_auth_file(tmp_path / "auth.yaml"), max_connections=10, max_connections_per_token=1
    )
    proto = ["callassist.v1", f"bearer.{KEYS['integration']}"]
    sockets = [
        await websockets.connect(f"{server.ws}/v1/calls/limit-{n}", subprotocols=proto)  # type: ignore[arg-type]
        for n in range(3)
    ]
    for sock in sockets:
        await sock.close()


async def test_outbox_keeps_alerts_and_overflows() -> None:
    """Stale suggestions are shed; alerts never are: a queue full of them overflows (-> 1013)."""
    from server.outbox import BusMessage, Outbox

    outbox = Outbox(3)
    outbox.put(BusMessage("suggestion-1", droppable=True))
    outbox.put(BusMessage("alert-1"))
    outbox.put(BusMessage("alert-2"))
    outbox.put(BusMessage("alert-3"))  # sheds suggestion-1
    assert outbox.dropped == 1 and not outbox.overflowed
    outbox.put(BusMessage("suggestion-2", droppable=True))  # the incoming stale one is dropped
    assert outbox.dropped == 2 and not outbox.overflowed
    outbox.put(BusMessage("alert-4"))  # nothing droppable left: overflow, never drop an alert
    assert outbox.overflowed and await outbox.get() is None


# ---------------------------------------------------------------------- supervisor team scoping


async def test_team_scoped_supervisor(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A supervisor scoped to team 'east' sees east calls only (snapshot, live events, drill-down,
    stored and live lists) and is refused on endpoints that aggregate across teams."""
    auth_file = write_auth_file(tmp_path / "auth.yaml")
    entries = json.loads(auth_file.read_text())
    entries["api_keys"].append({"name": "east-board", "role": "supervisor", "teams": ["east"], "sha256": hash_key("key-east")})  # fmt: skip
    auth_file.write_text(json.dumps(entries))
    server = server_factory(auth_file=auth_file)
    integration = ["callassist.v1", f"bearer.{KEYS['integration']}"]
    east = ["callassist.v1", "bearer.key-east"]

    async def start(call_id: str, team: str) -> Any:
        sock = await websockets.connect(f"{server.ws}/v1/calls/{call_id}", subprotocols=integration)  # type: ignore[arg-type]
        await sock.send(json.dumps({"type": "start", "agent_id": f"agent-{call_id}", "team": team}))
        assert json.loads(await sock.recv())["type"] == "started"
        return sock

    before = [await start("east-1", "east"), await start("west-1", "west")]
    async with websockets.connect(f"{server.ws}/v1/supervisor", subprotocols=east) as board:  # type: ignore[arg-type]
        snapshot = json.loads(await board.recv())
        assert [c["call_id"] for c in snapshot["calls"]] == ["east-1"]
        later = [await start("west-2", "west"), await start("east-2", "east")]
        await board.send(json.dumps({"type": "watch", "call_id": "west-1"}))
        await board.send(json.dumps({"type": "watch", "call_id": "east-2"}))
        seen: list[dict[str, Any]] = []
        while not any(e.get("type") == "call_state" for e in seen):
            seen.append(json.loads(await asyncio.wait_for(board.recv(), 5)))
        calls = {e.get("call", {}).get("call_id") or e.get("call_id") for e in seen} - {None}
        assert calls == {"east-2"}, seen
        errors = [e for e in seen if e.get("type") == "error"]
        assert errors and errors[0]["code"] == "forbidden"
        async with httpx.AsyncClient(
            base_url=server.http, headers={"Authorization": "Bearer key-east"}
        ) as client:
            live = (await client.get("/v1/live/calls")).json()["calls"]
            assert sorted(c["call_id"] for c in live) == ["east-1", "east-2"]
            for sock in before + later:
                await sock.send(json.dumps({"type": "end"}))
                assert json.loads(await sock.recv())["type"] == "ended"
                await sock.close()
            stored = (await client.get("/v1/calls")).json()["calls"]
            assert sorted(c["call_id"] for c in stored) == ["east-1", "east-2"]
            assert (await client.get("/v1/calls/west-1")).status_code == 404
            assert (await client.get("/v1/calls/east-1")).status_code == 200
            for path in (
                "/v1/qa/distribution",
                "/v1/supervisor/alerts",
                "/v1/analytics/kpis",
                "/v1/assist/adoption",
            ):
                assert (await client.get(path)).status_code == 403, path
        ended = set()
        while len(ended) < 2:
            event = json.loads(await asyncio.wait_for(board.recv(), 5))
            assert (event.get("call") or {}).get("team", "east") == "east", event
            if event.get("type") == "call_ended":
                ended.add(event["call_id"])
        assert ended == {"east-1", "east-2"}


def test_docs_show_the_policy() -> None:
    """docs/security.md carries the policy table as generated (`callassist auth policy`)."""
    from server.policy import markdown_table

    docs = (Path(__file__).resolve().parent.parent / "docs" / "security.md").read_text()
    assert markdown_table() in docs, "run `callassist auth policy` and paste it into docs/security.md"


async def test_open_mode_connection_limits(server_factory) -> None:  # type: ignore[no-untyped-def]
    """Open mode has no credentials to tell apart: only the total limit applies."""
    server = server_factory(max_connections=2, max_connections_per_token=1)
    url = f"{server.ws}/v1/supervisor"
    first, second = await websockets.connect(url), await websockets.connect(url)
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(url)
    assert refused.value.response.status_code == 503
    await first.close()
    await second.close()


def test_log_redaction_is_installed(secure: RunningServer) -> None:
    import logging

    assert any(isinstance(f, RedactTokens) for f in logging.getLogger("uvicorn.error").filters)
    assert any(isinstance(f, RedactTokens) for f in logging.getLogger("uvicorn.access").filters)


async def test_demo_replay_runs_with_auth_on(secure: RunningServer) -> None:
    """The demo replay is an integration client of its own server: it gets a minted token."""
    async with httpx.AsyncClient(base_url=secure.http, headers=bearer("admin")) as client:
        started = await client.post("/v1/demo/run", params={"speed": 100})
        assert started.status_code == 202, started.text
        expected = set(started.json()["started"])
        stored: set[str] = set()
        for _ in range(300):
            calls = (await client.get("/v1/calls", params={"limit": 1000})).json()["calls"]
            stored = {c["call_id"].rsplit("-", 1)[0] for c in calls}
            if expected <= stored:
                break
            await asyncio.sleep(100 * MS)
    assert expected <= stored


async def test_alert_ack_names_the_signed_in_supervisor(secure: RunningServer) -> None:
    """With auth on, who acknowledged an alert is the credential's name, not what the body claims."""
    phone = Softphone(secure.ws, "ack-who")
    phone.url += f"?token={KEYS['integration']}"
    async with phone, httpx.AsyncClient(base_url=secure.http, headers=bearer("supervisor")) as client:
        await phone.start("agent-ack", customer={"id": "c-ack"})
        await phone.say(
            "customer", "this is ridiculous, I'm furious, worst service ever, I hate this", 4.0, "u-1"
        )
        alerts: list[dict[str, Any]] = []
        for _ in range(50):
            alerts = (await client.get("/v1/supervisor/alerts", params={"call_id": "ack-who"})).json()[
                "alerts"
            ]
            if alerts:
                break
            await asyncio.sleep(100 * MS)
        assert alerts, "the angry utterance raised no alert"
        acked = await client.post(
            f"/v1/supervisor/alerts/{alerts[0]['alert_id']}/ack", json={"by": "Impostor"}
        )
        await phone.end()
    assert acked.status_code == 200 and acked.json()["by"] == "supervisor-key"
