"""What does crossing processes through Redis add to an agent's assist latency?

Two ``callassist serve`` processes (A, B) share a private redis-server. Each of N
concurrent calls replays a bundled demo call script into A in real time; its agent has
one widget connected to A (the single-process path: local delivery) and one connected
to B (the cross-process path: A -> Redis pub/sub -> B). Both widgets receive the very same
events, so for every event the difference of the two arrival times is exactly what the
cross-process hop adds, free of analysis-time noise. Also reported: softphone-send ->
assist arrival on each path, and events missing or duplicated on B.

    .venv/bin/python bench/cross_process_latency.py --calls 100 --duration 60
    .venv/bin/python bench/cross_process_latency.py --calls 100 --duration 60 --model-thread-priority idle
    .venv/bin/python bench/cross_process_latency.py --servers ws://host-a:8000,ws://host-b:8000

Target (issue 4): cross-process delivery adds <= 5 ms p99 at 100 calls. On a small host the
tail is mostly Redis and B waiting for a core that A's model thread holds: compare the
model-thread priorities (docs/operations.md, "CPU priority of the model threads").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assist.thread_priority import THREAD_PRIORITIES  # noqa: E402
from bench.serving import cpu_seconds  # noqa: E402
from server.demo import ScriptedCall, load_demo_calls  # noqa: E402
from tests.cluster import RedisServer, ServeProcess  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] if ordered else float("nan")
    )


class Widget:
    """An agent widget that stamps every event with its arrival time."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[tuple[float, dict[str, Any]]] = []
        self._socket: Any = None
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self._socket = await websockets.connect(self.url, max_size=2**22)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in self._socket:
                self.events.append((time.perf_counter(), json.loads(message)))

    async def close(self) -> None:
        await self._socket.close()
        if self._task:
            await self._task


async def run_call(
    base: str, call_id: str, agent_id: str, script: ScriptedCall, duration: float, sent: dict[str, float]
) -> None:
    async with websockets.connect(f"{base}/v1/calls/{call_id}", max_size=2**22) as sock:
        await sock.send(json.dumps({"type": "start", "agent_id": agent_id, "customer": script.customer}))
        reply = json.loads(await sock.recv())
        assert reply["type"] == "started", reply
        t0 = time.monotonic()
        for index, utterance in enumerate(script.utterances):
            at = float(utterance["at"])
            if at > duration:
                break
            await asyncio.sleep(max(0.0, at - (time.monotonic() - t0)))
            utterance_id = f"u-{index}"
            frame = {"type": "utterance", "speaker": utterance["speaker"], "text": str(utterance["text"])}
            frame |= {"timestamp": at, "is_final": True, "utterance_id": utterance_id}
            sent[f"{call_id}/{utterance_id}"] = time.perf_counter()
            await sock.send(json.dumps(frame))
        await sock.send(json.dumps({"type": "end"}))
        while json.loads(await sock.recv())["type"] not in ("ended", "error"):
            pass


async def measure(
    a_ws: str, b_ws: str, calls: int, duration: float, stagger: float, pids: dict[str, int]
) -> dict[str, Any]:
    scripts = load_demo_calls()
    agents = [f"bench-agent-{i}" for i in range(calls)]
    local = [Widget(f"{a_ws}/v1/agents/{agent}") for agent in agents]
    remote = [Widget(f"{b_ws}/v1/agents/{agent}") for agent in agents]
    for widget in local + remote:
        await widget.open()
    await asyncio.sleep(1.0)
    sent: dict[str, float] = {}

    async def one(i: int) -> None:
        await asyncio.sleep(i * stagger)  # calls do not all start on the same second
        await run_call(
            a_ws, f"bench-{i}-{time.time_ns()}", agents[i], scripts[i % len(scripts)], duration, sent
        )

    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(calls)))
    elapsed = time.perf_counter() - started
    cpu = {name: round(cpu_seconds(pid) - cpu_before[name], 1) for name, pid in pids.items()}
    await asyncio.sleep(2.0)
    for widget in local + remote:
        await widget.close()

    hop, e2e_local, e2e_remote, server_ms = [], [], [], []
    missing = duplicated = 0
    for a, b in zip(local, remote, strict=True):
        a_events = [(t, e) for t, e in a.events if e["type"] != "snapshot"]
        b_events = [(t, e) for t, e in b.events if e["type"] != "snapshot"]
        b_counts = Counter(json.dumps(e, sort_keys=True) for _, e in b_events)
        duplicated += sum(n - 1 for n in b_counts.values() if n > 1)
        b_arrival = {json.dumps(e, sort_keys=True): t for t, e in b_events}
        for t_a, event in a_events:
            t_b = b_arrival.get(json.dumps(event, sort_keys=True))
            if t_b is None:
                missing += 1
                continue
            hop.append((t_b - t_a) * 1000)
            if event["type"] == "assist":
                t_sent = sent.get(f"{event['call_id']}/{event['utterance_id']}")
                if t_sent is not None:
                    e2e_local.append((t_a - t_sent) * 1000)
                    e2e_remote.append((t_b - t_sent) * 1000)
                    server_ms.append(event["latency_ms"])
    return {
        "calls": calls,
        "seconds": round(elapsed, 1),
        "events_compared": len(hop),
        "assists": len(e2e_local),
        "missing_on_b": missing,
        "duplicated_on_b": duplicated,
        "hop_ms": {q: round(pct(hop, q), 2) for q in (50, 95, 99)} | {"max": round(max(hop, default=0), 2)},
        "assist_local_ms": {q: round(pct(e2e_local, q), 1) for q in (50, 95, 99)},
        "assist_remote_ms": {q: round(pct(e2e_remote, q), 1) for q in (50, 95, 99)},
        "server_latency_ms": {q: round(pct(server_ms, q), 1) for q in (50, 95, 99)},
        "hop_mean_ms": round(statistics.fmean(hop), 2) if hop else None,
        "cpu_seconds": cpu,
    }


def run(coroutine: Any) -> Any:
    """uvloop when installed (the servers use it too): less client-side noise in the figures."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of each call script to replay")
    parser.add_argument("--stagger", type=float, default=0.1, help="seconds between call starts")
    parser.add_argument(
        "--servers", help="ws://A,ws://B of running servers sharing Redis (default: start them)"
    )
    parser.add_argument(
        "--appendfsync",
        choices=("always", "everysec", "no"),
        default="everysec",
        help="AOF fsync policy of the private redis-server (docs/operations.md recommends everysec; "
        "with always, Redis stops for an fsync after every write, pub/sub included)",
    )
    parser.add_argument("--torch-threads", default="1", help="per spawned server (2 servers on few cores)")
    parser.add_argument(
        "--model-thread-priority",
        choices=THREAD_PRIORITIES,
        help="CALLASSIST_MODEL_THREAD_PRIORITY of the spawned servers (default: the server's, "
        "auto, which is idle with a Redis bus); normal shows what the priority is worth",
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="both widgets on A: the 'hop' is then the noise floor of the method (client, scheduling)",
    )
    args = parser.parse_args()

    if args.servers:
        a_ws, b_ws = args.servers.split(",")
        result = run(measure(a_ws, b_ws, args.calls, args.duration, args.stagger, {}))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            redis = RedisServer(directory / "redis", appendfsync=args.appendfsync).start()
            env = {"CALLASSIST_TORCH_THREADS": args.torch_threads}
            if args.model_thread_priority:
                env["CALLASSIST_MODEL_THREAD_PRIORITY"] = args.model_thread_priority
            servers = [ServeProcess(n, redis.url, directory / f"{n}.db", directory, **env) for n in "AB"]
            try:
                print("starting two servers (each loads the model)...", file=sys.stderr)
                with ThreadPoolExecutor(2) as pool:
                    list(pool.map(lambda s: s.wait_ready(), servers))
                second = servers[0] if args.baseline else servers[1]
                pids = {
                    "A": servers[0].pid,
                    "B": servers[1].pid,
                    "redis": redis.process.pid if redis.process else 0,
                    "client": os.getpid(),
                }
                pids = {name: pid for name, pid in pids.items() if pid}
                result = run(measure(servers[0].ws, second.ws, args.calls, args.duration, args.stagger, pids))
                result["baseline"] = args.baseline
                result["appendfsync"] = args.appendfsync
                # What the kernel applied (CALLASSIST_MODEL_THREAD_PRIORITY, docs/operations.md).
                result["model_thread_priority"] = {
                    s.name: httpx.get(f"{s.http}/healthz", timeout=5).json().get("model_thread_priority")
                    for s in servers
                }
                metrics = servers[0].metrics()
                with contextlib.closing(sqlite3.connect(directory / "A.db")) as db:
                    avg, biggest = db.execute(
                        "SELECT AVG(LENGTH(record)), MAX(LENGTH(record)) FROM calls"
                    ).fetchone()
                result["record_bytes"] = {"mean": round(avg or 0), "max": biggest or 0}
                result["a_bus"] = {
                    k.split('"')[1]: v
                    for k, v in metrics.items()
                    if k.startswith("callassist_bus_messages_total")
                }
            finally:
                for server in servers:
                    server.stop()
                redis.stop()
    print(json.dumps(result, indent=2))
    hop = result["hop_ms"]
    print(
        f"\n{result['calls']} calls, {result['events_compared']} events compared ({result['assists']} assists): "
        f"cross-process hop p50 {hop[50]} ms, p95 {hop[95]} ms, p99 {hop[99]} ms, max {hop['max']} ms; "
        f"missing on B {result['missing_on_b']}, duplicated {result['duplicated_on_b']}; "
        f"model threads {result.get('model_thread_priority', '(running servers)')}"
    )


if __name__ == "__main__":
    main()
