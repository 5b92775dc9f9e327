"""Wall board responsiveness with many live calls, measured in the browser.

A real server (`callassist serve`, its own process) gets N live calls from N softphone
sockets; the load generator then sends final utterances across them at a fixed total rate
(each one reaches the board as a `call_update`, plus any alert it raises). The board runs in
Debian's Chromium (headless, 1920x1080) and the page itself records:

- long tasks (PerformanceObserver "longtask": main-thread tasks over 50 ms),
- requestAnimationFrame gaps (frame-to-frame intervals; 16.7 ms is a perfect 60 Hz),
- the board's own render passes (time spent applying a frame's worth of events to the DOM),
- the first render of the snapshot (N rows at once).

    .venv/bin/python bench/ui_board.py --calls 500 --rate 10 --duration 60
    .venv/bin/python bench/ui_board.py --calls 500 --rate 50 --duration 30 --mode dense
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
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
from bench.serving import free_port, start_server, stop_server  # noqa: E402
from tests.browser import launch_chromium  # noqa: E402

UTTERANCES = ROOT / "server" / "demo" / "kb_eval.csv"
TIERS = ["bronze", "silver", "gold", "platinum"]
NAMES = ["Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jo", "Kai", "Lin", "Mo", "Nia"]

# Installed before the page's own scripts: records long tasks and frame gaps from the start.
PROBE = """
window.__perf = { longtasks: [], gaps: [], last: 0, recording: false };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__perf.longtasks.push([entry.startTime, entry.duration]);
}).observe({ type: "longtask", buffered: true });
(function frame(now) {
  const p = window.__perf;
  if (p.recording && p.last) p.gaps.push(now - p.last);
  p.last = now;
  requestAnimationFrame(frame);
})(performance.now());
"""


async def open_calls(base: str, count: int) -> list[Any]:
    """N live calls, each on its own softphone socket, opened 50 at a time."""
    sockets: list[Any] = []
    rng = random.Random(7)

    async def one(index: int) -> Any:
        sock = await websockets.connect(f"{base}/v1/calls/board-{index}", max_size=2**22)
        customer = {"id": f"cust-{index}", "name": f"{rng.choice(NAMES)} {index}", "tier": rng.choice(TIERS)}
        start = {"type": "start", "agent_id": f"agent-{index:03d}", "customer": customer,
                 "team": f"team-{index % 12}"}  # fmt: skip
        await sock.send(json.dumps(start))
        await sock.recv()
        return sock

    for first in range(0, count, 50):
        sockets += await asyncio.gather(*(one(i) for i in range(first, min(count, first + 50))))
    return sockets


async def drive(sockets: list[Any], rate: float, seconds: float, texts: list[str]) -> int:
    """Final utterances at `rate` per second in total, spread over random calls."""
    rng = random.Random(11)
    call_time = [0.0] * len(sockets)
    sent = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        index = rng.randrange(len(sockets))
        call_time[index] += rng.uniform(2.0, 6.0)
        speaker = "customer" if rng.random() < 0.6 else "agent"
        frame = {"type": "utterance", "speaker": speaker, "text": rng.choice(texts),
                 "timestamp": round(call_time[index], 2), "utterance_id": f"u-{sent}"}  # fmt: skip
        await sockets[index].send(json.dumps(frame))
        sent += 1
        await asyncio.sleep(max(0.0, started + sent / rate - time.perf_counter()))
    return sent


def summary(values: list[float]) -> str:
    if not values:
        return "none"
    return (
        f"p50 {percentile(values, 50):.1f} ms  p95 {percentile(values, 95):.1f} ms  "
        f"p99 {percentile(values, 99):.1f} ms  max {max(values):.1f} ms"
    )


async def run(args: argparse.Namespace, base: str, http: str) -> None:
    from playwright.async_api import async_playwright

    texts = [row["query"] for row in csv.DictReader(UTTERANCES.open(encoding="utf-8"))]
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        page = await browser.new_page(viewport={"width": 1920, "height": 1080})
        await page.add_init_script(PROBE)
        sockets = await open_calls(base, args.calls)
        loaded = time.perf_counter()
        await page.goto(f"{http}/supervisor?mode={args.mode}")
        await page.wait_for_function(
            f"document.querySelectorAll('.tbody .row').length >= {args.calls}", timeout=60000
        )
        first_render = time.perf_counter() - loaded
        snapshot_ms = await page.evaluate("Math.max(...window.callassistBoard.stats.flushMs)")
        await asyncio.sleep(2)
        await page.evaluate(
            "(() => { const p = window.__perf; p.longtasks = []; p.gaps = []; p.recording = true;"
            " const s = window.callassistBoard.stats; s.flushes = 0; s.events = 0; s.frames = 0; })()"
        )
        sent = await drive(sockets, args.rate, args.duration, texts)
        await asyncio.sleep(1.0)
        if args.screenshot:
            await page.screenshot(path=args.screenshot)
        result = await page.evaluate(
            "(() => { const p = window.__perf; p.recording = false; const s = window.callassistBoard.stats;"
            " const n = Math.min(s.flushes, s.flushMs.length);"
            " return { longtasks: p.longtasks, gaps: p.gaps, events: s.events, frames: s.frames,"
            "          flushes: Array.from(s.flushMs.slice(0, n)),"
            "          heap: performance.memory ? performance.memory.usedJSHeapSize : null,"
            "          rows: document.querySelectorAll('.tbody .row').length }; })()"
        )
        await browser.close()
        for sock in sockets:
            await sock.close()

    gaps, flushes = result["gaps"], result["flushes"]
    long_durations = [duration for _, duration in result["longtasks"]]
    print(f"board mode={args.mode} calls={args.calls} rows={result['rows']} rate={args.rate}/s "
          f"duration={args.duration}s utterances sent={sent}")  # fmt: skip
    print(f"snapshot: {args.calls} rows on screen {first_render * 1000:.0f} ms after navigation; "
          f"first render pass {snapshot_ms:.1f} ms")  # fmt: skip
    print(f"events applied {result['events']} ({result['events'] / args.duration:.1f}/s), "
          f"render passes {len(flushes)}")  # fmt: skip
    print(f"render pass: {summary(flushes)}  mean {statistics.fmean(flushes) if flushes else 0:.2f} ms")
    print(f"frame gaps ({len(gaps)} frames, {len(gaps) / args.duration:.1f} fps): {summary(gaps)}; "
          f"over 50 ms: {sum(g > 50 for g in gaps)}")  # fmt: skip
    print(f"long tasks (>50 ms): {len(long_durations)}, total {sum(long_durations):.0f} ms, "
          f"max {max(long_durations, default=0):.0f} ms")  # fmt: skip
    if result["heap"]:
        print(f"JS heap used at end: {result['heap'] / 2**20:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rate", type=float, default=10.0, help="final utterances per second, all calls")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--mode", choices=["wall", "dense"], default="wall")
    parser.add_argument("--url", help="http://host:port of a running server (default: start one)")
    parser.add_argument("--screenshot", help="save a PNG of the board at the end of the run")
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
            asyncio.run(run(args, http.replace("http", "ws", 1), http))
        finally:
            if proc:
                stop_server(proc, timeout=120)


if __name__ == "__main__":
    main()
