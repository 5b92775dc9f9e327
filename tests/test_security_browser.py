"""Auth in a real browser (Debian's Chromium via Playwright) against a real server with auth on:
the widget embedded on another origin connects with a minted agent token and is refused
without one; the bundled agent page asks for a credential and then works from its cookie."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import websockets
from playwright.async_api import async_playwright, expect

from tests.browser import launch_chromium
from tests.helpers import MS, RunningServer, start_server
from tests.test_security import AGENT, KEYS, write_auth_file

WIDGET = "callassist-widget"
BILL = "hi, my bill is double this month and I don't understand why"


class DeskPages:
    """A stand-in third-party agent desktop: a plain HTTP server on another loopback port
    (another origin) serving the pages the test puts in ``pages``."""

    def __init__(self) -> None:
        pages: dict[str, str] = {}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.pages = pages
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def desk() -> Iterator[DeskPages]:
    pages = DeskPages()
    yield pages
    pages.httpd.shutdown()
    pages.httpd.server_close()


@pytest.fixture(scope="module")
def server(
    embedder: Any, demo_config: Any, tmp_path_factory: pytest.TempPathFactory, desk: DeskPages
) -> Iterator[RunningServer]:
    from server.app import create_app
    from server.settings import Settings

    tmp = tmp_path_factory.mktemp("secure-ui")
    settings = Settings(
        store_path=tmp / "calls.db",
        process_name="secure-ui",
        auth_file=write_auth_file(tmp / "auth.yaml"),
        allowed_origins=[desk.origin],
    )
    running = start_server(create_app(settings, embedder=embedder, config=demo_config))
    yield running
    running.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    expect.set_options(timeout=15000 * MS * 1000)
    async with async_playwright() as playwright:
        chromium = await launch_chromium(playwright)
        yield chromium
        await chromium.close()


async def desk_page(browser: Any, server: RunningServer, desk: DeskPages, token: str | None) -> Any:
    """A third-party agent desktop on its own origin embedding the widget with one script tag."""
    context = await browser.new_context()
    attribute = f' token="{token}"' if token else ""
    html = f"""<!doctype html><html><body>
      <script src="{server.http}/static/widget.js"></script>
      <{WIDGET} agent-id="{AGENT}"{attribute} max-backoff="1"></{WIDGET}></body></html>"""
    path = f"/desk-{'token' if token else 'none'}"
    desk.pages[path] = html
    page = await context.new_page()
    page.set_default_timeout(15000 * MS * 1000)
    await page.goto(f"{desk.origin}{path}")
    return page


async def test_widget_connects_with_token_and_is_refused_without(
    browser: Any, server: RunningServer, desk: DeskPages
) -> None:
    async with httpx.AsyncClient(base_url=server.http) as client:
        minted = await client.post(
            "/v1/auth/token",
            json={"agent_id": AGENT, "ttl_seconds": 600},
            headers={"Authorization": f"Bearer {KEYS['integration']}"},
        )
    token = minted.json()["token"]

    refused = await desk_page(browser, server, desk, None)
    with_token = await desk_page(browser, server, desk, token)
    widget = with_token.locator(WIDGET)
    await expect(widget.locator(".conn")).to_have_attribute("data-state", "live")
    protocols = ["callassist.v1", f"bearer.{KEYS['integration']}"]
    async with websockets.connect(f"{server.ws}/v1/calls/secure-ui-1", subprotocols=protocols) as phone:  # type: ignore[arg-type]
        await phone.send(json.dumps({"type": "start", "agent_id": AGENT}))
        await phone.send(json.dumps({"type": "utterance", "speaker": "customer", "text": BILL, "timestamp": 3.0, "is_final": True, "utterance_id": "u-1"}))  # fmt: skip
        await expect(widget.locator(".suggestion")).to_have_attribute("data-utterance-id", "u-1")
        await phone.send(json.dumps({"type": "end"}))
    # Without a token the handshake is refused (HTTP 401): the widget never goes live.
    await refused.wait_for_timeout(2000 * MS * 1000)
    state = await refused.locator(f"{WIDGET} .conn").get_attribute("data-state")
    assert state in ("reconnecting", "connecting"), state
    for page in (refused, with_token):
        await page.context.close()


async def test_agent_page_signs_in_with_a_key(browser: Any, server: RunningServer) -> None:
    """No secret in the page: it shows a sign-in form, trades the key for an HttpOnly cookie, then connects."""
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(15000 * MS * 1000)
    await page.goto(f"{server.http}/agent?agent={AGENT}")
    form = page.locator("#ca-login")
    await expect(form).to_be_visible()
    await form.locator("input[name=credential]").fill("wrong-key")
    await form.locator("button[type=submit]").click()
    await expect(form.locator(".ca-login-error")).to_contain_text("invalid")
    await form.locator("input[name=credential]").fill(KEYS["agent"])
    await form.locator("button[type=submit]").click()
    await expect(page.locator(f"{WIDGET} .conn")).to_have_attribute("data-state", "live")
    await expect(page.locator("#ca-login")).to_have_count(0)
    cookies = await context.cookies()
    session = [c for c in cookies if c["name"] == "callassist_session"]
    assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
    assert KEYS["agent"] not in await page.content()
    await context.close()
