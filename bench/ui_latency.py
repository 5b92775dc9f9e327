"""Utterance sent by the softphone -> suggestion visible in the agent widget, in the browser.

A real server (`callassist serve`, its own process) and N simulated calls, each with its own
agent; every call sends one final customer utterance every `--interval` seconds (random
phase), like bench/assist_latency.py. One page in Debian's Chromium hosts the widgets of the
first `--widgets` agents (the real widget.js, one <callassist-widget> each, each with its own
socket); the other agents listen on plain sockets, as desktops elsewhere would. (All 100 in
one page measures that page more than the product: 100 widgets repainting on the same two
cores as the server slow the server down.) In the page, a
MutationObserver on each widget's suggestion records when it shows the suggestion of a given
utterance; a setTimeout(0) from that callback runs after the frame is painted. The load
generator stamps each utterance just before sending it. Both clocks are the machine's wall
clock (the page's performance.timeOrigin + now()); the offset between them is calibrated
with round trips and printed.

    .venv/bin/python bench/ui_latency.py --calls 100 --duration 60
    .venv/bin/python bench/ui_latency.py --calls 100 --widgets 100   # every agent's widget in one page
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.assist_latency import percentile  # noqa: E402
from bench.serving import free_port, rss_mb, start_server, stop_server  # noqa: E402
from tests.browser import launch_chromium  # noqa: E402

UTTERANCES = ROOT / "server" / "demo" / "kb_eval.csv"

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>widgets</title>
<style> body {{ margin: 0; display: grid; grid-template-columns: repeat(auto-fill, 420px); gap: 8px; }}
        callassist-widget {{ height: 520px; }} </style></head><body>
<script src="{http}/static/widget.js"></script>
<script>
  window.__seen = [];
  window.__received = [];
  const agents = {agents};
  for (const agent of agents) {{
    const widget = document.createElement("callassist-widget");
    widget.setAttribute("agent-id", agent);
    widget.setAttribute("shortcuts", "off");
    document.body.append(widget);
    const suggestion = widget.shadowRoot.querySelector(".suggestion");
    new MutationObserver(() => {{
      const utterance = suggestion.dataset.utteranceId;
      if (!utterance) return;
      const dom = performance.timeOrigin + performance.now();
      setTimeout(() => window.__seen.push([agent, utterance, dom, performance.timeOrigin + performance.now()]), 0);
    }}).observe(suggestion, {{ attributes: true, attributeFilter: ["data-utterance-id"] }});
    widget.addEventListener("callassist:assist", (e) =>
      window.__received.push([agent, e.detail.assist.utterance_id, performance.timeOrigin + performance.now(), e.detail.assist.latency_ms]));
  }}
  window.__ready = () => [...document.querySelectorAll("callassist-widget")]
    .every((w) => w.shadowRoot.querySelector(".conn").dataset.state === "live");
</script></body></html>"""


async def clock_offset(page: Any, rounds: int = 15) -> tuple[float, float]:
    """Page clock minus our clock, in ms, from the round trip with the smallest delay."""
    best = (float("inf"), 0.0)
    for _ in range(rounds):
        before = time.time() * 1000
        page_now = await page.evaluate("performance.timeOrigin + performance.now()")
        after = time.time() * 1000
        rtt = after - before
        if rtt < best[0]:
            best = (rtt, page_now - (before + after) / 2)
    return best[1], best[0] / 2


async def drain_agent(base: str, agent_id: str, sent: dict, received: list[float]) -> None:
    """An agent without a widget in the page: a plain socket, as on another agent's desktop."""
    async with websockets.connect(f"{base}/v1/agents/{agent_id}", max_size=2**22) as agent:
        async for message in agent:
            event = json.loads(message)
            if event["type"] == "assist" and (agent_id, event["utterance_id"]) in sent:
                received.append(time.time() * 1000 - sent[(agent_id, event["utterance_id"])])


async def simulate_call(
    base: str,
    index: int,
    texts: list[str],
    interval: float,
    stop_at: float,
    warmup_until: float,
    sent: dict,
    plain: list[float] | None,
) -> None:
    call_id, agent_id = f"uibench-{os.getpid()}-{index}", f"uibench-agent-{index}"
    rng = random.Random(index)
    drain = asyncio.create_task(drain_agent(base, agent_id, sent, plain)) if plain is not None else None
    try:
        await simulate_phone(base, call_id, agent_id, rng, texts, interval, stop_at, warmup_until, sent)
    finally:
        if drain is not None:
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)


async def simulate_phone(
    base: str,
    call_id: str,
    agent_id: str,
    rng: random.Random,
    texts: list[str],
    interval: float,
    stop_at: float,
    warmup_until: float,
    sent: dict,
) -> None:
    async with websockets.connect(f"{base}/v1/calls/{call_id}") as phone:
        await phone.send(
            json.dumps({"type": "start", "agent_id": agent_id, "customer": {"id": f"c-{call_id}"}})
        )
        await phone.recv()
        await asyncio.sleep(rng.uniform(0, interval))
        turn = 0
        while time.perf_counter() < stop_at:
            utterance_id = f"u-{turn}"
            frame = {"type": "utterance", "speaker": "customer", "text": rng.choice(texts),
                     "timestamp": turn * interval, "utterance_id": utterance_id}  # fmt: skip
            payload = json.dumps(frame)
            if time.perf_counter() >= warmup_until:
                sent[(agent_id, utterance_id)] = time.time() * 1000
            await phone.send(payload)
            turn += 1
            await asyncio.sleep(interval)
        await asyncio.sleep(1.5)  # let the last suggestions show
        await phone.send(json.dumps({"type": "end"}))
        await phone.recv()


async def run(args: argparse.Namespace, base: str, http: str) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    texts = [row["query"] for row in csv.DictReader(UTTERANCES.open(encoding="utf-8"))]
    measured = list(range(min(args.widgets, args.calls)))
    agents = [f"uibench-agent-{i}" for i in measured]
    sent: dict[tuple[str, str], float] = {}
    plain: list[float] = []
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        page = await browser.new_page(viewport={"width": 1920, "height": 1080})
        await page.goto(
            f"{http}/healthz"
        )  # the server's origin: loopback scripts from a null origin are refused
        await page.set_content(PAGE.format(http=http, agents=json.dumps(agents)))
        await page.wait_for_function("window.__ready && window.__ready()", timeout=60000)
        offset_before, uncertainty = await clock_offset(page)
        start = time.perf_counter()
        await asyncio.gather(
            *(
                simulate_call(
                    base,
                    i,
                    texts,
                    args.interval,
                    start + args.duration,
                    start + args.warmup,
                    sent,
                    None if i in measured else plain,
                )  # fmt: skip
                for i in range(args.calls)
            )
        )
        offset_after, _ = await clock_offset(page)
        seen = await page.evaluate("window.__seen")
        received = await page.evaluate("window.__received")
        await browser.close()
    offset = (offset_before + offset_after) / 2
    wanted = {key: at for key, at in sent.items() if key[0] in set(agents)}
    visible, painted, socket, server = [], [], [], []
    first_seen: dict[tuple[str, str], tuple[float, float]] = {}
    for agent, utterance, dom, after_paint in seen:
        first_seen.setdefault((agent, utterance), (dom, after_paint))
    for key, at in wanted.items():
        if key in first_seen:
            dom, after_paint = first_seen[key]
            visible.append(dom - offset - at)
            painted.append(after_paint - offset - at)
    for agent, utterance, at_page, latency_ms in received:
        if (agent, utterance) in wanted:
            socket.append(at_page - offset - wanted[(agent, utterance)])
            server.append(latency_ms)
    return {
        "sent": len(wanted),
        "visible": visible,
        "painted": painted,
        "socket": socket,
        "plain": plain,
        "server": server,
        "offset": offset,
        "drift": offset_after - offset_before,
        "uncertainty": uncertainty,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument(
        "--widgets",
        type=int,
        default=10,
        help="calls whose agent has a widget in the page (the rest: plain sockets)",
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument(
        "--interval", type=float, default=4.0, help="seconds between customer utterances per call"
    )
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds excluded from the figures")
    parser.add_argument("--url", help="http://host:port of a running server (default: start one)")
    args = parser.parse_args()
    proc = None
    with tempfile.TemporaryDirectory() as tmp:
        http = args.url
        if http is None:
            port = free_port()
            proc, ready_s = start_server(port, Path(tmp) / "bench.db")
            http = f"http://127.0.0.1:{port}"
            print(f"server ready after {ready_s:.1f} s")
        try:
            result = asyncio.run(run(args, http.replace("http", "ws", 1), http))
            rss = rss_mb(proc.pid) if proc else float("nan")
        finally:
            if proc:
                stop_server(proc, timeout=120)
    print(f"calls={args.calls} widgets={min(args.widgets, args.calls)} interval={args.interval}s "
          f"duration={args.duration}s warmup={args.warmup}s cpus={os.cpu_count()} server RSS {rss:.0f} MB")  # fmt: skip
    print(f"clock offset page-bench {result['offset']:.2f} ms (+/- {result['uncertainty']:.2f} ms, "
          f"drift over the run {result['drift']:.2f} ms)")  # fmt: skip
    missing = result["sent"] - len(result["visible"])
    print(
        f"utterances measured={result['sent']} suggestions seen={len(result['visible'])} not seen={missing}"
    )
    for name, values in (
        ("sent -> suggestion in the DOM (visible)", result["visible"]),
        ("sent -> frame painted", result["painted"]),
        ("sent -> assist received by the widget", result["socket"]),
        ("server (frame -> assist published), widget calls", result["server"]),
        ("other agents, plain socket: sent -> assist received", result["plain"]),
    ):
        if values:
            print(
                f"{name}: p50 {percentile(values, 50):.1f} ms  p95 {percentile(values, 95):.1f} ms  "
                f"p99 {percentile(values, 99):.1f} ms  max {max(values):.1f} ms  mean {statistics.fmean(values):.1f} ms"
            )


if __name__ == "__main__":
    main()
