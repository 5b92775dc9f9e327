"""The Redis bus alone: publish in one process, receive in another, no model, no sockets.

Isolates what RedisBus adds between two processes (queue -> pipelined PUBLISH -> Redis ->
subscription -> local fan-out) from everything else the assist path does; compare with
bench/cross_process_latency.py, which measures the whole widget-to-widget difference.

    .venv/bin/python bench/bus_hop.py --messages 5000 --rate 200
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.outbox import Outbox  # noqa: E402
from server.redis_bus import RedisBus  # noqa: E402
from tests.cluster import RedisServer  # noqa: E402


async def publish(url: str, messages: int, rate: float) -> None:
    bus = RedisBus(url)
    await bus.start()
    await asyncio.sleep(1.0)  # the receiver is subscribed
    for i in range(messages):
        await bus.publish(["agent:bench"], {"type": "assist", "i": i, "sent": time.time(), "pad": "x" * 1500})
        await asyncio.sleep(1 / rate)
    await bus.close()


async def receive(url: str, messages: int) -> None:
    bus = RedisBus(url)
    await bus.start()
    outbox = Outbox(messages + 1)
    await bus.subscribe("agent:bench", outbox)
    print("subscribed", flush=True)
    hops = []
    async with asyncio.timeout(messages / 10 + 60):
        while len(hops) < messages:
            message = await outbox.get()
            assert message is not None
            hops.append((time.time() - json.loads(message.text)["sent"]) * 1000)
    await bus.close()
    hops.sort()

    def at(q: float) -> float:
        return round(hops[min(len(hops) - 1, int(q / 100 * len(hops)))], 3)

    print(
        json.dumps(
            {"messages": len(hops), "p50_ms": at(50), "p95_ms": at(95), "p99_ms": at(99), "max_ms": at(100)}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=200.0, help="messages per second")
    parser.add_argument("--role", choices=["publish", "receive"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help="redis:// URL (default: a private redis-server)")
    args = parser.parse_args()
    if args.role == "publish":
        asyncio.run(publish(args.url, args.messages, args.rate))
        return
    if args.role == "receive":
        asyncio.run(receive(args.url, args.messages))
        return
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp), appendonly=False).start() if not args.url else None
        url = args.url or redis.url  # type: ignore[union-attr]
        common = [sys.executable, __file__, "--url", url, "--messages", str(args.messages)]
        receiver = subprocess.Popen([*common, "--role", "receive"], stdout=subprocess.PIPE, text=True)
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "subscribed"
        subprocess.run([*common, "--role", "publish", "--rate", str(args.rate)], check=True)
        print(receiver.stdout.read().strip())
        receiver.wait()
        if redis:
            redis.stop()


if __name__ == "__main__":
    main()
