"""The agent widget and the wall board in a real browser (Debian's Chromium, driven by
Playwright) against a real running server, with calls streamed through the real protocol."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect

from server import keys
from server.demo import load_demo_calls, replay_call
from tests.browser import launch_chromium
from tests.helpers import MS, Listener, RunningServer, Softphone, start_server

SHOTS = Path(os.environ.get("CALLASSIST_SCREENSHOT_DIR", "var/screenshots"))
SCRIPTS = {script.id: script for script in load_demo_calls()}
BILL = "hi, my bill is double this month and I don't understand why"
WIDGET = "callassist-widget"


class LoopProbe:
    """Test-only extension: remembers the server's event loop so a test can publish on its bus."""

    name = "loop-probe"

    def routes(self) -> list[Any]:
        return []

    async def start(self, services: Any) -> None:
        self.loop = asyncio.get_running_loop()
        self.services = services

    async def stop(self) -> None:
        pass

    def publish(self, channel: str, payload: dict[str, Any]) -> None:
        future = asyncio.run_coroutine_threadsafe(self.services.bus.publish([channel], payload), self.loop)
        future.result(timeout=5)

    def channels(self) -> list[str]:
        return asyncio.run_coroutine_threadsafe(self._channels(), self.loop).result(timeout=5)

    async def _channels(self) -> list[str]:
        return self.services.bus.hub.channels()


def start_ui_server(
    embedder: Any, config: Any, store: Path, port: int = 0
) -> tuple[RunningServer, LoopProbe]:
    from server.app import create_app
    from server.extensions import default_extensions
    from server.settings import Settings

    probe = LoopProbe()
    # The embedding test mounts the widget in an about:blank page (Origin "null"): allowed explicitly,
    # as an operator allows the origins of the desktops that embed the widget (docs/security.md).
    settings = Settings(store_path=store, process_name="ui-test", allowed_origins=["null"])
    app = create_app(settings, embedder=embedder, config=config, extensions=[*default_extensions(), probe])
    return start_server(app, port=port), probe


@pytest.fixture(scope="module")
def ui(embedder: Any, demo_config: Any) -> Iterator[tuple[RunningServer, LoopProbe]]:
    """One server for the module's browser tests (each test uses its own agents and calls)."""
    with tempfile.TemporaryDirectory() as tmp:
        server, probe = start_ui_server(embedder, demo_config, Path(tmp) / "ui.db")
        yield server, probe
        server.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    async with async_playwright() as playwright:
        chromium = await launch_chromium(playwright)
        yield chromium
        await chromium.close()


@pytest.fixture
async def open_page(browser: Any) -> AsyncIterator[Callable[..., Awaitable[Page]]]:
    """New browser context per page; any uncaught page error fails the test."""
    contexts: list[Any] = []
    errors: list[str] = []
    expect.set_options(timeout=15000 * MS * 1000)

    async def make(url: str | None = None, **context_options: Any) -> Page:
        context_options.setdefault("viewport", {"width": 1280, "height": 860})
        context = await browser.new_context(**context_options)
        contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(15000 * MS * 1000)
        page.on("pageerror", lambda error: errors.append(str(error)))
        if url:
            await page.goto(url)
        return page

    yield make
    for context in contexts:
        await context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


def shot_path(name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS / f"{name}.png"


async def shoot(target: Any, name: str) -> None:
    """Screenshots go to var/screenshots (CALLASSIST_SCREENSHOT_DIR=docs/screenshots refreshes the docs)."""
    await target.screenshot(path=str(shot_path(name)), animations="disabled")


async def widget_page(
    open_page: Callable[..., Awaitable[Page]], server: RunningServer, agent: str, **options: Any
) -> Page:
    query = "".join(f"&{k}={v}" for k, v in options.pop("query", {}).items())
    page = await open_page(f"{server.http}/agent?agent={agent}{query}", **options)
    await expect(page.locator(f"{WIDGET} .conn")).to_have_attribute("data-state", "live")
    return page


# ---------------------------------------------------------------------- wall board


async def board_page(open_page: Any, server: RunningServer, mode: str = "dense", **options: Any) -> Page:
    page = await open_page(f"{server.http}/supervisor?mode={mode}&as=Sam", **options)
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    return page


async def test_wall_board_shows_calls_and_raises_alerts(ui: Any, open_page: Any) -> None:
    """Demo calls on the wall board: rows appear, the bad call raises alerts that a
    supervisor acknowledges (shared with every board), and the drill-down streams the call's
    transcript and suggestion while watched (and stops when closed)."""
    server, probe = ui
    page = await board_page(open_page, server, viewport={"width": 1920, "height": 1080})
    other_board = await board_page(open_page, server)
    names = [
        "complaint-skipped-disclosure",
        "billing-dispute",
        "outage",
        "upgrade",
        "hold-and-card",
        "cancellation",
    ]
    replays = [
        asyncio.create_task(
            replay_call(server.ws, SCRIPTS[name], speed=14, call_id=f"ui-board-{i}", interim=False)
        )
        for i, name in enumerate(names)
    ]
    try:
        complaint = page.locator('.tbody .row[data-call-id="ui-board-0"]')
        await expect(page.locator(".tbody .row")).to_have_count(6)
        await expect(complaint.locator(".c-customer")).to_have_text("Gary Lomax")
        await expect(complaint.locator(".c-tier")).to_have_text("Bronze")
        alert = page.locator('.alert[data-alert-id^="ui-board-0:"]').first
        await expect(alert).to_be_visible()
        await expect(complaint).to_have_attribute("data-alerts", "open")
        await asyncio.sleep(1.5)  # let the calls build up some history for the screenshots
        await shoot(page, "board-dense")
        await page.keyboard.press("w")
        await expect(page.locator("body")).to_have_attribute("data-mode", "wall")
        await shoot(page, "board-wall")

        alert_id = await alert.get_attribute("data-alert-id")
        alert = page.locator(f'.alert[data-alert-id="{alert_id}"]')  # newer alerts go on top
        await alert.locator(".ack").click()
        await expect(alert).to_have_attribute("data-acked", "true")
        await expect(alert.locator(".a-acked")).to_contain_text("Acknowledged by Sam")
        shared = other_board.locator(f'.alert[data-alert-id="{alert_id}"]')
        await expect(shared).to_have_attribute("data-acked", "true")

        await complaint.click()
        drill = page.locator("#drill")
        await expect(drill).to_be_visible()
        await expect(drill.locator("#drill-title")).to_contain_text("Gary Lomax")
        await expect(drill.locator("#drill-lines li").first).to_contain_text("Northwind Connect")
        assert keys.call_channel("ui-board-0") in await asyncio.to_thread(probe.channels)
        await page.keyboard.press("Escape")
        await expect(drill).to_be_hidden()
        await expect(complaint).to_be_focused()
        for _ in range(50):
            if keys.call_channel("ui-board-0") not in await asyncio.to_thread(probe.channels):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("unwatch did not unsubscribe the drill-down")
    finally:
        acks = await asyncio.gather(*replays)
    assert all(ack["type"] == "ended" for ack in acks)
    await expect(page.locator(".tbody .row")).to_have_count(0)
    await expect(page.locator("#empty")).to_be_visible()


async def test_wall_board_sort_filter_and_queue_stats(ui: Any, open_page: Any) -> None:
    """Columns sort (click and keyboard), filters narrow the rows, wall mode uses large type
    and fewer columns, and queue stats from routing appear when published (absent before)."""
    server, probe = ui
    page = await board_page(open_page, server)
    await expect(page.locator("#queue")).to_be_hidden()
    people = [("ui-sort-a", "agent-zed", "Zoe", "bronze", BILL),
              ("ui-sort-b", "agent-amy", "Ann", "platinum", "I want to cancel my contract, it's too expensive"),
              ("ui-sort-c", "agent-max", "Max", "gold", "my internet keeps dropping every evening")]  # fmt: skip
    phones = [Softphone(server.ws, call_id) for call_id, *_ in people]
    try:
        for phone, (_, agent, name, tier, text) in zip(phones, people, strict=True):
            await phone.__aenter__()
            await phone.start(agent, customer={"id": name.lower(), "name": name, "tier": tier}, team="care")
            await phone.say("customer", text, 2.0, "u-1")
        rows = page.locator(".tbody .row:not([hidden])")
        await expect(rows).to_have_count(3)
        await expect(page.locator(".tbody .row .c-intent").first).not_to_have_text("—")

        await page.locator('button[data-sort="agent"]').click()
        await expect(rows.locator(".c-agent")).to_have_text(["agent-amy", "agent-max", "agent-zed"])
        await page.locator('button[data-sort="agent"]').press("Enter")
        await expect(rows.locator(".c-agent")).to_have_text(["agent-zed", "agent-max", "agent-amy"])
        assert (
            await page.locator('[role=columnheader]:has(button[data-sort="agent"])').get_attribute(
                "aria-sort"
            )
            == "descending"
        )
        await page.locator('button[data-sort="tier"]').click()
        await expect(rows.locator(".c-customer")).to_have_text(["Ann", "Max", "Zoe"])

        await page.keyboard.press("/")
        await expect(page.locator("#filter")).to_be_focused()
        await page.keyboard.type("zoe")
        await expect(rows).to_have_count(1)
        await page.keyboard.press("Escape")
        await expect(rows).to_have_count(3)
        await page.locator("#f-tier").select_option("gold")
        await expect(rows.locator(".c-customer")).to_have_text(["Max"])
        await page.locator("#f-tier").select_option("")

        dense_font = await page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
        await page.locator('.mode button[data-mode="wall"]').click()
        wall_font = await page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
        assert wall_font >= 1.5 * dense_font
        await expect(page.locator(".tbody .row .c-team").first).to_be_hidden()

        probe.publish(keys.SUPERVISOR_CHANNEL, {"type": "queue_stats", "waiting": 7, "longest_wait_s": 95,
                                                "service_level": 0.82, "queues": []})  # fmt: skip
        await expect(page.locator("#queue")).to_be_visible()
        await expect(page.locator("#q-waiting")).to_have_text("7")
        await expect(page.locator("#q-longest")).to_have_text("1:35")
        await expect(page.locator("#q-sl")).to_have_text("82%")

        await page.locator(".tbody .row").first.focus()
        await page.keyboard.press("ArrowDown")
        await page.keyboard.press("Enter")
        await expect(page.locator("#drill")).to_be_visible()
        await page.locator("#drill-close").click()
        await expect(page.locator("#drill")).to_be_hidden()
    finally:
        for phone in phones:
            if phone.socket is not None:
                await phone.end()
                await phone.__aexit__(None, None, None)


# ---------------------------------------------------------------------- agent widget


async def test_widget_shows_suggestion_articles_and_transcript(ui: Any, open_page: Any) -> None:
    """A demo call streamed through the protocol: the widget shows the latest suggestion,
    the (up to three) articles, intent with confidence, sentiment and the transcript, exactly
    as the agent socket delivered them."""
    server, _ = ui
    script = SCRIPTS["complaint-skipped-disclosure"]
    page = await widget_page(open_page, server, script.agent_id)
    widget = page.locator(WIDGET)
    async with Listener(f"{server.ws}/v1/agents/{script.agent_id}") as truth:
        await truth.wait_for(lambda ev: bool(ev))
        replay = asyncio.create_task(replay_call(server.ws, script, speed=20, call_id="ui-widget-1"))
        await truth.wait_for(
            lambda ev: len([e for e in ev if e["type"] == "assist"]) >= 6, timeout=30000 * MS
        )
        await expect(widget.locator(".suggestion")).not_to_have_attribute("data-empty", "true")
        await widget.locator(".art-toggle").first.click()
        await expect(widget.locator(".sr[aria-live=polite]")).to_contain_text("Suggestion:")
        await shoot(page.locator(".desk-side"), "widget")  # mid-call, for the docs
        ack = await replay
        await truth.wait_for(lambda ev: any(e["type"] == "call_ended" for e in ev))
    assert ack["type"] == "ended"
    latest = truth.of_type("assist")[-1]
    await expect(widget.locator(".banner")).to_contain_text("Call ended")
    await expect(widget.locator(".suggestion")).to_have_attribute("data-utterance-id", latest["utterance_id"])
    await expect(widget.locator(".suggestion")).to_have_text(latest["suggested_action"])
    await expect(widget.locator(".art-title")).to_have_text(
        [a["title"] for a in latest["knowledge_articles"][:3]]
    )
    await widget.locator(".art-toggle").last.click()
    await expect(widget.locator(".art-snippet").last).to_have_text(
        latest["knowledge_articles"][-1]["snippet"]
    )
    await expect(widget.locator(".intent .conf")).to_have_text(f"{round(latest['intent_confidence'] * 100)}%")
    await expect(widget.locator(".sentiment .trend")).to_contain_text(latest["sentiment_trend"])
    await expect(widget.locator(".alert").first).to_have_attribute("data-severity", "high")
    finals = [e["text"] for e in truth.of_type("transcript") if e["is_final"]]
    await expect(widget.locator(".line .text")).to_have_text(finals)


async def test_widget_interim_text_and_compliance_order(ui: Any, open_page: Any) -> None:
    """Interim text is styled apart from final text and becomes final in place (same node,
    no flicker); compliance alerts are listed most severe first whatever order they came in."""
    server, _ = ui
    page = await widget_page(open_page, server, "agent-interim")
    widget = page.locator(WIDGET)
    async with Softphone(server.ws, "ui-interim-1") as phone:
        await phone.start("agent-interim", customer={"id": "c-7", "name": "Ada Lane", "tier": "gold"})
        await expect(widget.locator(".name")).to_have_text("Ada Lane")
        await phone.say("customer", "my bill is", 2.0, "u-1", final=False)
        interim = widget.locator('.line[data-key="customer:u-1"]')
        await expect(interim).to_have_class("line interim")
        await interim.evaluate("node => { node.__marker = 'same node' }")
        italic = await interim.locator(".text").evaluate("node => getComputedStyle(node).fontStyle")
        assert italic == "italic"
        await phone.say("customer", BILL, 2.0, "u-1")
        await expect(interim).to_have_class("line")
        assert await interim.evaluate("node => node.__marker") == "same node"
        await expect(interim.locator(".text")).to_have_text(BILL)
        await phone.say("agent", "I'm putting you on hold now", 5.0, "u-2")
        await expect(widget.locator(".alert")).to_have_count(1)
        await phone.say("agent", "I guarantee you will get a full refund by Friday", 9.0, "u-3")
        await expect(widget.locator(".alert")).to_have_count(2)
        severities = await widget.locator(".alert").evaluate_all(
            "nodes => nodes.map(n => n.dataset.severity)"
        )
        assert severities == ["high", "medium"]
        await expect(widget.locator(".sr[aria-live=assertive]")).to_contain_text("Compliance, high")
        await phone.end()


async def test_widget_feedback_reaches_the_server(ui: Any, open_page: Any) -> None:
    """Clicks and keyboard shortcuts on the suggestion and an article are stored with the
    call (one row per target, idempotent) and show up in the adoption figures."""
    server, _ = ui
    page = await widget_page(open_page, server, "agent-fbui")
    widget = page.locator(WIDGET)
    async with Softphone(server.ws, "ui-fb-1") as phone:
        await phone.start("agent-fbui", customer={"id": "c-8"})
        await phone.say("customer", BILL, 3.0, "u-1")
        await expect(widget.locator(".suggestion")).to_have_attribute("data-utterance-id", "u-1")
        used = widget.locator(".action .fb-used")
        await used.click()
        await expect(used).to_have_attribute("aria-pressed", "true")
        await expect(used).not_to_have_attribute("data-pending", "true")
        await page.keyboard.press("Alt+Shift+H")
        await expect(widget.locator(".action .fb-helpful")).to_have_attribute("aria-pressed", "true")
        await page.keyboard.press("Alt+Shift+N")  # changed their mind: not helpful replaces helpful
        await expect(widget.locator(".action .fb-not_helpful")).to_have_attribute("aria-pressed", "true")
        await expect(widget.locator(".action .fb-helpful")).to_have_attribute("aria-pressed", "false")
        first_article = widget.locator(".article").first
        article_id = await first_article.get_attribute("data-id")
        await first_article.locator(".fb-used").click()
        await first_article.locator(".fb-helpful").click()
        await expect(first_article.locator(".fb-helpful")).to_have_attribute("aria-pressed", "true")
        await expect(first_article.locator("[data-pending]")).to_have_count(0)
        await expect(widget.locator(".action [data-pending]")).to_have_count(0)
        await phone.end()

    with sqlite3.connect(server.services.settings.store_path) as conn:
        rows = conn.execute(
            "SELECT target, article_id, used, rating FROM assist_feedback WHERE call_id = 'ui-fb-1'"
            " ORDER BY target"
        ).fetchall()
    assert rows == [("article", article_id, 1, "helpful"), ("suggestion", "", 1, "not_helpful")]
    async with httpx.AsyncClient(base_url=server.http) as client:
        for _ in range(100):
            figures = (await client.get("/v1/assist/adoption", params={"agent_id": "agent-fbui"})).json()
            if figures["calls"]:
                break
            await asyncio.sleep(0.05)
    assert figures["suggestions"] == {"shown": 1, "used": 1, "helpful": 0, "not_helpful": 1,
                                      "used_rate": 1.0, "helpful_rate": 0.0}  # fmt: skip
    article = next(row for row in figures["by_article"] if row["article_id"] == article_id)
    assert (article["used"], article["helpful"], article["helpful_rate"]) == (1, 1, 1.0)


async def test_widget_opened_mid_call_redraws_it(ui: Any, open_page: Any) -> None:
    """A widget that connects (or reconnects) during a call redraws it from the server's
    call_state at once: transcript, last suggestion and open compliance alerts; a second
    live call (a consult) shows as a tab the agent can switch to with the arrow keys."""
    server, _ = ui
    async with (
        Softphone(server.ws, "ui-resume-1") as phone,
        Listener(f"{server.ws}/v1/agents/agent-resume") as truth,
    ):
        await phone.start("agent-resume", customer={"id": "c-9", "name": "Ravi Patel"})
        await phone.say("agent", "I'm putting you on hold now", 1.0, "u-0")
        await phone.say("customer", BILL, 4.0, "u-1")
        await truth.wait_for(lambda ev: any(e["type"] == "assist" for e in ev))
        page = await widget_page(open_page, server, "agent-resume")
        widget = page.locator(WIDGET)
        await expect(widget.locator(".name")).to_have_text("Ravi Patel")
        await expect(widget.locator(".suggestion")).to_have_text(
            truth.of_type("assist")[0]["suggested_action"]
        )
        await expect(widget.locator(".line")).to_have_count(2)
        await expect(widget.locator('.alert[data-rule="hold_without_permission"]')).to_have_count(1)
        async with Softphone(server.ws, "ui-resume-2") as consult:  # a second call: tabs appear
            await consult.start("agent-resume", customer={"id": "c-13", "name": "Back Office"})
            await expect(widget.locator(".name")).to_have_text("Back Office")
            tabs = widget.locator(".tab")
            await expect(tabs).to_have_count(2)
            await tabs.nth(1).focus()
            await page.keyboard.press("ArrowLeft")
            await expect(widget.locator(".name")).to_have_text("Ravi Patel")
            await expect(tabs.nth(0)).to_have_attribute("aria-selected", "true")
            await consult.end()
        await phone.end()


async def test_widget_reconnects_after_server_restart(
    open_page: Any, embedder: Any, demo_config: Any, tmp_path: Path
) -> None:
    """The server stops mid-call and a new one starts on the same port with the same store:
    the widget shows it is reconnecting, comes back live by itself, marks the call that ended
    while it was away, and shows the next call's suggestions."""
    store = tmp_path / "restart.db"
    first, _ = await asyncio.to_thread(start_ui_server, embedder, demo_config, store)
    second = None
    try:
        page = await widget_page(open_page, first, "agent-rs", query={"max-backoff": "1"})
        widget = page.locator(WIDGET)
        async with Softphone(first.ws, "ui-rs-1") as phone:
            await phone.start("agent-rs", customer={"id": "c-10", "name": "Lee Chan"})
            await phone.say("customer", BILL, 3.0, "u-1")
            await expect(widget.locator(".suggestion")).to_have_attribute("data-utterance-id", "u-1")
            await asyncio.to_thread(first.stop)
        await expect(widget.locator(".conn")).to_have_attribute("data-state", "reconnecting")
        await expect(widget.locator(".retry")).to_be_visible()
        second, _ = await asyncio.to_thread(start_ui_server, embedder, demo_config, store, first.port)
        await expect(widget.locator(".conn")).to_have_attribute("data-state", "live")
        await expect(widget.locator(".banner")).to_contain_text("Call ended")
        async with httpx.AsyncClient(base_url=second.http) as client:
            stored = (await client.get("/v1/calls/ui-rs-1")).json()
        assert stored["end_reason"] == "server_shutdown"
        async with Softphone(second.ws, "ui-rs-2") as phone:
            await phone.start("agent-rs", customer={"id": "c-11", "name": "Mo Diaz"})
            await expect(widget.locator(".name")).to_have_text("Mo Diaz")
            await phone.say("customer", "I want to cancel my broadband, it's too expensive", 2.0, "u-1")
            await expect(widget.locator(".suggestion")).to_have_attribute("data-utterance-id", "u-1")
            await phone.end()
    finally:
        for server in (first, second):
            if server is not None:
                await asyncio.to_thread(server.stop)


async def test_widget_embeds_in_any_page(ui: Any, open_page: Any) -> None:
    """One script tag from the server mounts the widget into a foreign page (custom element
    or CallAssist.mount); the host's CSS cannot break it; at 125 % zoom in a narrow sidebar
    nothing overflows; with reduced motion nothing animates; Alt+Shift+1 opens article 1."""
    server, _ = ui
    host = f"""<!doctype html><html><head><style>
      * {{ font-size: 40px !important; color: red !important; }} button {{ display: none !important; }}
      .sidebar {{ width: 288px; }}
    </style></head><body><div class="sidebar" id="slot"></div>
    <script src="{server.http}/static/widget.js"></script>
    <script>CallAssist.mount("#slot", {{ agentId: "agent-embed", theme: "light" }});</script>
    </body></html>"""
    page = await open_page(
        viewport={"width": 320, "height": 700}, device_scale_factor=1.25, reduced_motion="reduce"
    )
    await page.set_content(host)
    widget = page.locator(WIDGET)
    await expect(widget.locator(".conn")).to_have_attribute("data-state", "live")
    async with Softphone(server.ws, "ui-embed-1") as phone:
        await phone.start("agent-embed", customer={"id": "c-12", "name": "Sam Okoro", "tier": "gold"})
        await phone.say("customer", BILL, 3.0, "u-1")
        await expect(widget.locator(".suggestion")).to_have_attribute("data-utterance-id", "u-1")
        await expect(widget.locator(".action .fb-used")).to_be_visible()
        overflow = await widget.evaluate(
            """w => { const box = w.shadowRoot.querySelector('.ca');
                      return { inner: box.scrollWidth - box.clientWidth, page: document.documentElement.scrollWidth - innerWidth,
                               font: getComputedStyle(w.shadowRoot.querySelector('.suggestion')).fontSize,
                               animation: getComputedStyle(w.shadowRoot.querySelector('.suggestion')).animationName,
                               transition: getComputedStyle(w.shadowRoot.querySelector('.meter .fill')).transitionDuration }; }"""
        )
        assert overflow["inner"] <= 0 and overflow["page"] <= 0, overflow
        assert overflow["font"] == "18px"  # the widget's own type scale, not the host's 40px
        assert overflow["animation"] == "none" and overflow["transition"] == "0s"
        await page.keyboard.press("Alt+Shift+1")
        toggle = widget.locator(".art-toggle").first
        await expect(toggle).to_have_attribute("aria-expanded", "true")
        await expect(toggle).to_be_focused()
        await page.keyboard.press("Escape")
        await expect(toggle).to_have_attribute("aria-expanded", "false")
        await shoot(page, "widget-embedded-125")
        await phone.end()
