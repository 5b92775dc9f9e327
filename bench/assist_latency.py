"""Assist latency under load: N simulated calls at a realistic pace.

Each call has a softphone socket and the agent's widget socket. Every call sends one final
customer utterance every 4 s (random phase per call); the latency is measured on the
client from sending the utterance to receiving the `assist` event that echoes its id.
The server runs as its own process (`callassist serve`), as in production.

    .venv/bin/python bench/assist_latency.py --calls 100 --duration 120
    .venv/bin/python bench/assist_latency.py --url ws://127.0.0.1:8000 --calls 1   # an already running server
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

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.serving import free_port, rss_mb, start_server, stop_server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
UTTERANCES = ROOT / "server" / "demo" / "kb_eval.csv"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def simulate_call(
    base: str,
    index: int,
    texts: list[str],
    interval: float,
    stop_at: float,
    warmup_until: float,
    results: dict,
) -> None:
    call_id, agent_id = f"bench-{os.getpid()}-{index}", f"bench-agent-{index}"
    sent: dict[str, float] = {}
    rng = random.Random(index)
    async with (
        websockets.connect(f"{base}/v1/agents/{agent_id}") as agent,
        websockets.connect(f"{base}/v1/calls/{call_id}") as phone,
    ):
        await phone.send(json.dumps({"type": "start", "agent_id": agent_id, "customer": {"id": f"c{index}"}}))
        await phone.recv()

        async def receive() -> None:
            async for message in agent:
                event = json.loads(message)
                if event["type"] == "assist" and event["utterance_id"] in sent:
                    now = time.perf_counter()
                    if now >= warmup_until:
                        results["client"].append((now - sent.pop(event["utterance_id"])) * 1000)
                        results["server"].append(event["latency_ms"])
                        results["degraded"] += bool(event["degraded"])
                    else:
                        sent.pop(event["utterance_id"])

        receiver = asyncio.create_task(receive())
        await asyncio.sleep(rng.uniform(0, interval))
        turn = 0
        call_time = 0.0
        while time.perf_counter() < stop_at:
            utterance_id = f"u-{turn}"
            frame = {"type": "utterance", "speaker": "customer", "text": rng.choice(texts), "timestamp": call_time,
                     "utterance_id": utterance_id}  # fmt: skip
            sent[utterance_id] = time.perf_counter()
            await phone.send(json.dumps(frame))
            results["sent"] += 1
            turn += 1
            call_time += interval
            await asyncio.sleep(interval)
        await asyncio.sleep(1.0)  # let the last assists arrive
        results["lost"] += len(sent)
        await phone.send(json.dumps({"type": "end"}))
        await phone.recv()
        receiver.cancel()


async def run(base: str, calls: int, duration: float, interval: float, warmup: float) -> dict:
    texts = [row["query"] for row in csv.DictReader(UTTERANCES.open(encoding="utf-8"))]
    results: dict = {"client": [], "server": [], "sent": 0, "lost": 0, "degraded": 0}
    start = time.perf_counter()
    await asyncio.gather(
        *(
            simulate_call(base, i, texts, interval, start + duration, start + warmup, results)
            for i in range(calls)
        )
    )
    results["elapsed"] = time.perf_counter() - start - warmup
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--duration", type=float, default=120, help="seconds of load")
    parser.add_argument(
        "--interval", type=float, default=4.0, help="seconds between final utterances per call"
    )
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds excluded from the figures")
    parser.add_argument("--url", help="ws://host:port of a running server (default: start one)")
    args = parser.parse_args()

    proc = None
    ready_s = None
    with tempfile.TemporaryDirectory() as tmp:
        base = args.url
        if base is None:
            port = free_port()
            proc, ready_s = start_server(port, Path(tmp) / "bench.db", "--log-level", "warning")
            base = f"ws://127.0.0.1:{port}"
        try:
            results = asyncio.run(run(base, args.calls, args.duration, args.interval, args.warmup))
            rss = rss_mb(proc.pid) if proc else float("nan")
        finally:
            if proc:
                stop_server(proc, timeout=60)
    client, server = results["client"], results["server"]
    print(
        f"calls={args.calls} interval={args.interval}s duration={args.duration}s warmup={args.warmup}s cpus={os.cpu_count()}"
    )
    if ready_s is not None:
        print(f"server ready (/healthz 200) after {ready_s:.1f} s; RSS at end {rss:.0f} MB")
    print(
        f"utterances sent={results['sent']} assists measured={len(client)} lost={results['lost']} degraded={results['degraded']}"
    )
    print(f"throughput {len(client) / results['elapsed']:.1f} assists/s")
    for name, values in (
        ("client (send -> assist received)", client),
        ("server (frame -> assist published)", server),
    ):
        if values:
            print(
                f"{name}: p50 {percentile(values, 50):.1f} ms  p95 {percentile(values, 95):.1f} ms  "
                f"p99 {percentile(values, 99):.1f} ms  max {max(values):.1f} ms  mean {statistics.fmean(values):.1f} ms"
            )


if __name__ == "__main__":
    main()
