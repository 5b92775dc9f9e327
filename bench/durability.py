"""Are ended calls lost when Redis restarts and an archive consumer is SIGKILLed?

Starts a private redis-server (append-only file, fsync always), two ``callassist serve``
processes and two ``callassist worker archive`` consumers, then runs N short calls spread
over both servers. During the run Redis is stopped for a few seconds and started again,
and one consumer is killed with SIGKILL (a replacement starts a little later). At the end
every call the softphone saw acknowledged must be in the archive exactly once.

    .venv/bin/python bench/durability.py --calls 300 --concurrency 30

Target (issue 4): 0 ended calls lost.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import websockets
from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server import keys  # noqa: E402
from tests.cluster import ArchiveProcess, RedisServer, ServeProcess  # noqa: E402

TEXTS = [
    "my bill is much higher than usual this month",
    "my broadband keeps dropping every evening",
    "I want to cancel my contract",
    "can I upgrade to a faster plan",
    "I was charged twice for the same thing",
    "my phone has no signal at home",
]


async def one_call(base: str, call_id: str, agent_id: str, rng: random.Random) -> dict[str, Any]:
    """Returns the softphone's view: was 'end' acknowledged as stored?"""
    async with websockets.connect(f"{base}/v1/calls/{call_id}") as sock:
        await sock.send(json.dumps({"type": "start", "agent_id": agent_id}))
        started = json.loads(await sock.recv())
        if started.get("type") != "started":
            return {"call_id": call_id, "acked": False, "error": started}
        for turn in range(3):
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            frame = {"type": "utterance", "speaker": "customer", "text": rng.choice(TEXTS)}
            frame |= {"timestamp": 2.0 + 4 * turn, "is_final": True, "utterance_id": f"u-{turn}"}
            await sock.send(json.dumps(frame))
        await sock.send(json.dumps({"type": "end"}))
        while True:
            reply = json.loads(await sock.recv())
            if reply["type"] == "ended":
                return {"call_id": call_id, "acked": bool(reply["stored"])}
            if reply["type"] == "error":
                return {"call_id": call_id, "acked": False, "error": reply}


async def drive(
    servers: list[ServeProcess], calls: int, concurrency: int, faults: list[tuple[float, str, Any]]
) -> tuple[list[dict[str, Any]], list[str]]:
    rng = random.Random(7)
    slots = asyncio.Semaphore(concurrency)
    timeline: list[str] = []
    t0 = time.monotonic()

    async def limited(i: int) -> dict[str, Any]:
        async with slots:
            try:
                return await one_call(servers[i % 2].ws, f"dur-{i}", f"dur-agent-{i % 40}", rng)
            except Exception as exc:  # a server never fails a call because of Redis
                return {"call_id": f"dur-{i}", "acked": False, "error": repr(exc)}

    async def inject() -> None:
        for at, label, action in faults:
            await asyncio.sleep(max(0.0, at - (time.monotonic() - t0)))
            timeline.append(f"t={time.monotonic() - t0:5.1f}s {label}")
            print(timeline[-1], file=sys.stderr)
            await asyncio.to_thread(action)

    injector = asyncio.create_task(inject())
    results = await asyncio.gather(*(limited(i) for i in range(calls)))
    await injector
    timeline.append(f"t={time.monotonic() - t0:5.1f}s all {calls} calls done")
    return list(results), timeline


async def archived(store: Path) -> dict[str, int]:
    def read() -> dict[str, int]:
        if not store.exists():
            return {}
        with contextlib.closing(sqlite3.connect(store)) as db:
            return dict(db.execute("SELECT call_id, COUNT(*) FROM calls GROUP BY call_id").fetchall())

    return await asyncio.to_thread(read)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=30)
    parser.add_argument("--redis-down", type=float, default=5.0, help="seconds Redis stays down")
    parser.add_argument("--claim-idle-ms", type=int, default=3000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        redis = RedisServer(directory / "redis").start()
        env = {"CALLASSIST_TORCH_THREADS": "1"}
        servers = [ServeProcess(n, redis.url, directory / f"{n}.db", directory, **env) for n in "AB"]
        store = directory / "archive.db"
        claim = ("--claim-idle-ms", str(args.claim_idle_ms))
        consumers = [ArchiveProcess(f"arch-{i}", redis.url, store, directory, *claim) for i in (1, 2)]
        try:
            print("starting two servers (each loads the model)...", file=sys.stderr)
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(lambda s: s.wait_ready(), servers))

            def replacement() -> None:
                consumers.append(ArchiveProcess("arch-3", redis.url, store, directory, *claim))

            # Hold the archive store's write lock for a moment so the consumers pile up entries
            # they have read but not acked; the SIGKILL then really strands work in arch-1.
            lock = sqlite3.connect(store, isolation_level=None, check_same_thread=False)
            faults = [
                (8.0, "redis-server stopped", redis.stop),
                (8.0 + args.redis_down, "redis-server started", redis.start),
                (17.5, "archive store write-locked", lambda: lock.execute("BEGIN IMMEDIATE")),
                (20.0, "consumer arch-1 SIGKILLed", consumers[0].kill),
                (20.5, "archive store unlocked", lambda: lock.execute("ROLLBACK")),
                (28.0, "consumer arch-3 started", replacement),
            ]
            results, timeline = asyncio.run(drive(servers, args.calls, args.concurrency, faults))
            acked = {r["call_id"] for r in results if r["acked"]}

            async def settle() -> dict[str, int]:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    counts = await archived(store)
                    if acked <= counts.keys():
                        return counts
                    await asyncio.sleep(1.0)
                return await archived(store)

            counts = asyncio.run(settle())

            async def stream_state() -> dict[str, Any]:
                raw = Redis.from_url(redis.url, decode_responses=True)
                pending = await raw.xpending(keys.redis_stream(keys.CALLS_STREAM), keys.ARCHIVE_GROUP)
                dead = await raw.xlen(keys.redis_stream(keys.CALLS_STREAM + keys.DEAD_LETTER_SUFFIX))
                await raw.aclose()
                return {"pending": pending["pending"], "dead_letters": dead}

            state = asyncio.run(stream_state())
            metrics = [s.metrics() for s in servers]
        finally:
            for consumer in consumers:
                consumer.stop()
            for server in servers:
                server.stop()
            redis.stop()
        lock.close()
        finals = [line for c in consumers for line in c.log().splitlines() if "stopped: stored=" in line]

        def total(field: str) -> int:
            return sum(int(line.split(f"{field}=")[1].split()[0]) for line in finals)

        duplicates_seen, claimed = total("duplicates"), total("claimed")
    lost = sorted(acked - counts.keys())
    result = {
        "calls": args.calls,
        "acked_stored": len(acked),
        "failed": [r for r in results if not r["acked"]][:5],
        "archived": len(counts),
        "lost": len(lost),
        "lost_ids": lost[:20],
        "rows_per_call_max": max(counts.values(), default=0),
        "entries_reclaimed_from_dead_consumer": claimed,
        "redeliveries_absorbed": duplicates_seen,
        **state,
        "bus_dropped": sum(m.get('callassist_bus_messages_total{event="dropped"}', 0) for m in metrics),
        "bus_reconnects": sum(m.get("callassist_bus_reconnects_total", 0) for m in metrics),
        "timeline": timeline,
    }
    print(json.dumps(result, indent=2))
    print(
        f"\n{result['acked_stored']}/{args.calls} calls acked as stored; {result['archived']} archived; "
        f"LOST {result['lost']}; max rows per call {result['rows_per_call_max']}; {claimed} entries re-claimed "
        f"from the killed consumer; {duplicates_seen} redeliveries absorbed; pending {state['pending']}, "
        f"dead letters {state['dead_letters']}"
    )


if __name__ == "__main__":
    main()
