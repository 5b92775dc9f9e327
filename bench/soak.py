"""Soak: 1,000 concurrent WebSocket calls at a realistic pace, with churn, for 20 minutes.

Each call has a softphone socket and its agent's widget socket; two supervisor wall boards
watch everything. Pace per call (the bundled demo call scripts' lines, in order): a customer
turn every 10-15 s (uniform) -- two interim partials ~1 s apart, then the final -- and an
agent turn (one interim, then the final) halfway to the next customer turn. That is
~5 frames and 2 analysed finals per call per 12.5 s: at 1,000 calls ~400 frames/s and
~160 analyses/s. Calls last 3-6 min (uniform); each ended call is replaced by a new one, so
at 1,000 calls ~220 calls a minute end and start (store, registry, QA and analytics paths run).

Warm-up: every seat's first call starts within the ramp, so for the first ramp + longest
call (420 s) the load is a start-up transient, not the steady state: no call has ended yet
(no store, QA or analytics work) and every live call holds a transcript of the same age,
growing until the first calls end. The figures are taken after it, when every seat has
replaced its first call; the run lasts 20 minutes so that 13 of them are steady. The memory
growth from 120 s (inside the transient) is printed too, for comparison with older runs.

Reported: server RSS after warm-up and at the end (growth %), assist latency (softphone
send of a customer final -> `assist` at the widget) p50/p99 per minute and the drift of p99
(last minute vs the first after warm-up, and the second half of the steady minutes against
the first, pooled), and after every call has ended and every socket
closed: open WebSocket connections, live calls, asyncio tasks and open file descriptors of
the server process, each against its baseline before the first call (0 leaks = equal).

    .venv/bin/python bench/soak.py                                  # 1,000 calls, 20 min
    .venv/bin/python bench/soak.py --calls 200 --duration 600 --embedder onnx-int8
    .venv/bin/python bench/soak.py --url ws://127.0.0.1:8000 --pid 1234 --token T   # running server
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.serving import free_port, log_problems, rss_mb, start_server, stop_server  # noqa: E402
from server.demo import load_demo_calls  # noqa: E402

OLD_WARMUP_S = 120.0  # the warm-up of runs before 2026-12-05: inside the start-up transient


def open_fds(pid: int) -> tuple[int, int]:
    """(all open descriptors, of which sockets) of the server process."""
    fds = os.listdir(f"/proc/{pid}/fd")
    sockets = 0
    for fd in fds:
        with contextlib.suppress(OSError):  # closed while we looked
            sockets += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return len(fds), sockets


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def load_scripts() -> list[list[dict[str, Any]]]:
    return [
        [{"speaker": u["speaker"], "text": u["text"]} for u in call.utterances] for call in load_demo_calls()
    ]


class Soak:
    def __init__(self, args: argparse.Namespace, base: str) -> None:
        self.args = args
        self.base = base
        self.token = f"?token={args.token}" if args.token else ""
        self.scripts = load_scripts()
        self.latencies: dict[int, list[float]] = defaultdict(list)  # minute -> ms
        self.degraded: dict[int, int] = defaultdict(int)  # minute -> assists whose analysis timed out
        self.lost = 0
        self.sent_finals = 0
        self.frames = 0
        self.calls_started = 0
        self.calls_ended = 0
        self.errors: list[str] = []
        self.t0 = 0.0
        self.stop_at = 0.0

    def minute(self) -> int:
        return int((time.perf_counter() - self.t0) // 60)

    async def slot(self, index: int) -> None:
        """One seat: calls back to back until the soak ends (first call phase-shifted)."""
        rng = random.Random(index)
        await asyncio.sleep(rng.uniform(0, self.args.ramp))
        generation = 0
        while time.perf_counter() < self.stop_at:
            generation += 1
            length = rng.uniform(self.args.min_call, self.args.max_call)
            try:
                await self.call(index, generation, rng, min(time.perf_counter() + length, self.stop_at))
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                self.errors.append(f"call {index}/{generation}: {exc!r}")
                await asyncio.sleep(1)

    async def call(self, index: int, generation: int, rng: random.Random, end_at: float) -> None:
        call_id = f"soak-{os.getpid()}-{index}-{generation}"
        agent_id = f"soak-agent-{index}"
        script = rng.choice(self.scripts)
        line = rng.randrange(len(script))
        sent: dict[str, float] = {}
        async with (
            websockets.connect(f"{self.base}/v1/agents/{agent_id}{self.token}", max_size=2**22) as agent,
            websockets.connect(f"{self.base}/v1/calls/{call_id}{self.token}", max_size=2**22) as phone,
        ):
            await phone.send(json.dumps({"type": "start", "agent_id": agent_id,
                                         "customer": {"id": f"cust-{index}-{generation}"}}))  # fmt: skip
            started = json.loads(await asyncio.wait_for(phone.recv(), 60))
            if started.get("type") != "started":
                raise OSError(f"start refused: {started}")
            self.calls_started += 1

            async def receive() -> None:
                async for message in agent:
                    event = json.loads(message)
                    if event.get("type") == "assist" and event.get("utterance_id") in sent:
                        at = sent.pop(event["utterance_id"])
                        now = time.perf_counter()
                        self.latencies[int((at - self.t0) // 60)].append((now - at) * 1000)
                        self.degraded[int((at - self.t0) // 60)] += bool(event.get("degraded"))

            receiver = asyncio.create_task(receive())
            call_start = time.perf_counter()
            turn = 0
            try:
                while time.perf_counter() < end_at:
                    cycle = rng.uniform(self.args.turn_min, self.args.turn_max)
                    # customer turn: two partials ~1 s apart, then the final
                    customer = self.next_line(script, line, "customer")
                    line = customer[1] + 1
                    await self.utterance(phone, "customer", customer[0], call_start, turn, sent, rng)
                    turn += 1
                    await asyncio.sleep(cycle / 2 - 2)
                    agent_line = self.next_line(script, line, "agent")
                    line = agent_line[1] + 1
                    await self.utterance(
                        phone, "agent", agent_line[0], call_start, turn, sent, rng, partials=1
                    )
                    turn += 1
                    await asyncio.sleep(cycle / 2 - 1)
                await asyncio.sleep(2.0)  # the last assist
                self.lost += len(sent)
                await phone.send(json.dumps({"type": "end"}))
                ended = json.loads(await asyncio.wait_for(phone.recv(), 60))
                if ended.get("type") != "ended":
                    self.errors.append(f"{call_id}: end answered {ended}")
                self.calls_ended += 1
            finally:
                receiver.cancel()

    @staticmethod
    def next_line(script: list[dict[str, Any]], start: int, speaker: str) -> tuple[str, int]:
        for offset in range(len(script)):
            i = (start + offset) % len(script)
            if script[i]["speaker"] == speaker:
                return script[i]["text"], i
        return script[0]["text"], 0

    async def utterance(
        self, phone: Any, speaker: str, text: str, call_start: float, turn: int, sent: dict[str, float],
        rng: random.Random, partials: int = 2,
    ) -> None:  # fmt: skip
        words = text.split()
        utterance_id = f"t{turn}"
        for p in range(partials):
            cut = max(1, len(words) * (p + 1) // (partials + 1))
            await phone.send(json.dumps({"type": "utterance", "speaker": speaker, "text": " ".join(words[:cut]),
                                         "timestamp": time.perf_counter() - call_start, "is_final": False,
                                         "utterance_id": utterance_id}))  # fmt: skip
            self.frames += 1
            await asyncio.sleep(rng.uniform(0.8, 1.2))
        if speaker == "customer":
            sent[utterance_id] = time.perf_counter()
            self.sent_finals += 1
        await phone.send(json.dumps({"type": "utterance", "speaker": speaker, "text": text,
                                     "timestamp": time.perf_counter() - call_start, "utterance_id": utterance_id}))  # fmt: skip
        self.frames += 1

    async def board(self) -> None:
        """A supervisor wall board: reads everything; reconnects if shed (1013) as the real board does."""
        while time.perf_counter() < self.stop_at + 30:
            try:
                async with websockets.connect(f"{self.base}/v1/supervisor{self.token}", max_size=2**24) as ws:
                    async for _ in ws:
                        pass
            except (OSError, websockets.WebSocketException) as exc:
                self.errors.append(f"board: {exc!r}")
            await asyncio.sleep(1)


async def scrape(http: str, token: str) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=30) as client:
        text = (await client.get(f"{http}/metrics{token}")).text
        live = (await client.get(f"{http}/v1/live/calls{token}")).json()
    values: dict[str, float] = {}
    for name in ("callassist_asyncio_tasks", "callassist_live_calls"):
        match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        values[name] = float(match.group(1)) if match else float("nan")
    values["ws_connections"] = sum(
        float(v) for v in re.findall(r"^callassist_ws_connections\{[^}]*\} (\S+)$", text, re.MULTILINE)
    )
    calls = live.get("calls", live) if isinstance(live, dict) else live
    values["registry_calls"] = len(calls)
    # What else the server did, to tie latency spikes to a cause: stop-the-world GC time
    # (full passes) and calls scored by the in-process QA worker.
    full_gc = re.search(r'^callassist_gc_pause_seconds_sum\{generation="2"\} (\S+)$', text, re.MULTILINE)
    values["full_gc_s"] = float(full_gc.group(1)) if full_gc else float("nan")
    values["qa_calls"] = sum(
        float(v) for v in re.findall(r"^callassist_qa_calls_total\{[^}]*\} (\S+)$", text, re.MULTILINE)
    )
    return values


def per_minute(samples: list[tuple[float, dict[str, float]]], key: str, minute: int) -> float:
    """How much a cumulative server figure grew during the given minute (from the samples)."""
    start = [v[key] for t, v in samples if t <= minute * 60]
    end = [v[key] for t, v in samples if t <= (minute + 1) * 60]
    return (end[-1] if end else 0.0) - (start[-1] if start else 0.0)


async def snapshot(http: str, token: str, pid: int | None) -> dict[str, float]:
    # Descriptors first: the server closes the scrape's own connection a moment after we do.
    fds = open_fds(pid) if pid else None
    values = await scrape(http, token)
    if pid and fds:
        values["rss_mb"] = rss_mb(pid)
        values["fds"], values["sockets"] = fds
    return values


async def main_async(args: argparse.Namespace, base: str, pid: int | None) -> int:
    http = base.replace("ws://", "http://").replace("wss://", "https://")
    token = f"?token={args.token}" if args.token else ""
    soak = Soak(args, base)
    await asyncio.sleep(args.settle)  # start-up work (QA backfill, KB upkeep) finishes first
    baseline = await snapshot(http, token, pid)
    print(f"baseline (server ready, no calls): {fmt(baseline)}", flush=True)
    soak.t0 = time.perf_counter()
    soak.stop_at = soak.t0 + args.duration
    boards = [asyncio.create_task(soak.board()) for _ in range(args.boards)]
    slots = [asyncio.create_task(soak.slot(i)) for i in range(args.calls)]
    samples: list[tuple[float, dict[str, float]]] = [(0.0, baseline)]
    warm: dict[str, float] | None = None
    while time.perf_counter() < soak.stop_at:
        await asyncio.sleep(min(args.sample, max(0.1, soak.stop_at - time.perf_counter())))
        elapsed = time.perf_counter() - soak.t0
        values = await snapshot(http, token, pid)
        samples.append((elapsed, values))
        minute = int(elapsed // 60)
        recent = soak.latencies.get(minute, []) or soak.latencies.get(minute - 1, [])
        p99 = f"{percentile(recent, 99):.0f}" if recent else "-"
        print(f"t={elapsed:5.0f}s live={values['callassist_live_calls']:.0f} ws={values['ws_connections']:.0f} "
              f"tasks={values['callassist_asyncio_tasks']:.0f} rss={values.get('rss_mb', float('nan')):.0f}MB "
              f"fds={values.get('fds', 0):.0f} started={soak.calls_started} ended={soak.calls_ended} "
              f"assist p99(this min)={p99}ms errors={len(soak.errors)}", flush=True)  # fmt: skip
        if warm is None and elapsed >= args.warmup:
            warm = values
    end_values = samples[-1][1] if samples else baseline
    print("ending: every call sends 'end' after its last turn ...", flush=True)
    await asyncio.gather(*slots)
    for task in boards:
        task.cancel()
    await asyncio.gather(*boards, return_exceptions=True)
    await asyncio.sleep(args.settle)
    after = await snapshot(http, token, pid)

    print()
    print(f"calls={args.calls} duration={args.duration:.0f}s warmup={args.warmup:.0f}s boards={args.boards} "
          f"cpus={os.cpu_count()} embedder={args.embedder if not args.url else '(running server)'} bus={args.bus}")  # fmt: skip
    print(f"pace: customer turn every {args.turn_min:g}-{args.turn_max:g} s (2 partials + final), agent turn "
          f"between (1 partial + final); "
          f"calls {args.min_call:.0f}-{args.max_call:.0f} s with churn")  # fmt: skip
    print(f"calls started {soak.calls_started}, ended {soak.calls_ended}; frames sent {soak.frames}; "
          f"customer finals {soak.sent_finals}; assists lost {soak.lost}; client errors {len(soak.errors)}")  # fmt: skip
    for error in soak.errors[:5]:
        print("  e.g. " + error[:200])
    warmup_minute = int(args.warmup // 60)
    print("assist latency per minute (send -> assist at widget):")
    rows = []
    for minute in sorted(soak.latencies):
        values = soak.latencies[minute]
        if len(values) < 20:
            continue
        rows.append((minute, percentile(values, 50), percentile(values, 99)))
        tag = " (warm-up)" if minute < warmup_minute else ""
        print(f"  minute {minute:2d}: n={len(values):6d} p50 {percentile(values, 50):7.1f} ms  "
              f"p99 {percentile(values, 99):7.1f} ms  max {max(values):7.1f} ms  "
              f"degraded {soak.degraded[minute] / len(values):5.1%}  "
              f"full GC {per_minute(samples, 'full_gc_s', minute):5.2f} s  "
              f"QA scored {per_minute(samples, 'qa_calls', minute):4.0f}{tag}")  # fmt: skip
    degraded = sum(soak.degraded.values())
    print(
        f"degraded assists (an analysis over its budget): {degraded} of {sum(map(len, soak.latencies.values()))}"
    )
    steady = [r for r in rows if r[0] >= warmup_minute and (r[0] + 1) * 60 <= args.duration]
    if len(steady) >= 2:
        drift = (steady[-1][2] - steady[0][2]) / steady[0][2] * 100
        print(f"p99 drift (minute {steady[-1][0]} vs minute {steady[0][0]}): {drift:+.1f}%  (target < 20%)")
        if len(steady) >= 4:  # a trend, not one minute's luck: each half holds thousands of assists
            half = len(steady) // 2
            first = [v for r in steady[:half] for v in soak.latencies[r[0]]]
            second = [v for r in steady[half:] for v in soak.latencies[r[0]]]
            p1, p2 = percentile(first, 99), percentile(second, 99)
            print(f"p99 drift, second half of the steady minutes vs the first (minutes {steady[half][0]}-"
                  f"{steady[-1][0]} vs {steady[0][0]}-{steady[half - 1][0]}): {p1:.0f} -> {p2:.0f} ms, "
                  f"{(p2 - p1) / p1 * 100:+.1f}%")  # fmt: skip
    all_values = [v for m, vs in soak.latencies.items() if m >= warmup_minute for v in vs]
    if all_values:
        print(f"after warm-up overall: p50 {percentile(all_values, 50):.1f} ms p99 {percentile(all_values, 99):.1f} ms "
              f"mean {statistics.fmean(all_values):.1f} ms n={len(all_values)}")  # fmt: skip
    if pid and warm:
        growth = (end_values["rss_mb"] - warm["rss_mb"]) / warm["rss_mb"] * 100
        print(f"server RSS: {baseline['rss_mb']:.0f} MB idle, {warm['rss_mb']:.0f} MB after warm-up "
              f"({args.warmup:.0f} s), {end_values['rss_mb']:.0f} MB at the end: growth {growth:+.1f}%  "
              f"(target < 5%)")  # fmt: skip
        early = next((v for t, v in samples if t >= OLD_WARMUP_S), None)
        if args.warmup > OLD_WARMUP_S and early is not None:
            growth = (end_values["rss_mb"] - early["rss_mb"]) / early["rss_mb"] * 100
            print(f"server RSS from {OLD_WARMUP_S:.0f} s (inside the start-up transient, as older runs "
                  f"measured): {early['rss_mb']:.0f} MB -> {end_values['rss_mb']:.0f} MB: {growth:+.1f}%")  # fmt: skip
    print(f"after all calls ended ({args.settle:.0f} s settle): {fmt(after)}")
    print(f"baseline before the first call:        {fmt(baseline)}")
    cumulative = ("rss_mb", "full_gc_s", "qa_calls")  # grow by design: not leaks
    leaks = {
        k: after[k] - baseline[k] for k in baseline if k not in cumulative and after.get(k) != baseline[k]
    }
    print(f"leaks (after - baseline): {leaks or 0}")
    return 0 if not leaks else 1


def fmt(values: dict[str, float]) -> str:
    keys = [
        "ws_connections",
        "callassist_live_calls",
        "registry_calls",
        "callassist_asyncio_tasks",
        "fds",
        "sockets",
    ]
    return " ".join(f"{k.removeprefix('callassist_')}={values[k]:.0f}" for k in keys if k in values)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=1200, help="seconds of load")
    parser.add_argument(
        "--warmup", type=float, help="seconds before the 'start' figures (default: ramp + max-call)"
    )
    parser.add_argument(
        "--ramp", type=float, default=60, help="first calls start spread over this many seconds"
    )
    parser.add_argument("--turn-min", type=float, default=10, help="seconds between customer turns, low")
    parser.add_argument("--turn-max", type=float, default=15, help="seconds between customer turns, high")
    parser.add_argument("--min-call", type=float, default=180)
    parser.add_argument("--max-call", type=float, default=360)
    parser.add_argument("--boards", type=int, default=2, help="supervisor wall boards")
    parser.add_argument("--sample", type=float, default=15, help="seconds between server samples")
    parser.add_argument(
        "--settle", type=float, default=10, help="seconds after the last call before the leak check"
    )
    parser.add_argument("--embedder", default="onnx", help="embedder of the started server (onnx, onnx-int8)")
    parser.add_argument("--bus", default="memory://", help="bus URL of the started server")
    parser.add_argument("--url", help="ws://host:port of a running server (default: start one)")
    parser.add_argument("--pid", type=int, help="pid of that running server (for RSS and descriptors)")
    parser.add_argument("--token", help="access token, sent as ?token= (when auth is on)")
    parser.add_argument("--log", type=Path, help="keep the server log here")
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = args.ramp + args.max_call
        if args.warmup > args.duration / 2:
            args.warmup = args.duration / 2
            print(f"note: a run this short has no steady state; figures from {args.warmup:.0f} s include "
                  "the start-up transient")  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        proc = None
        base, pid = args.url, args.pid
        log = args.log or Path(tmp) / "server.log"
        if base is None:
            port = free_port()
            proc, _ = start_server(
                port,
                Path(tmp) / "soak.db",
                "--log-level",
                "warning",
                "--embedder",
                args.embedder,
                "--bus",
                args.bus,
                log=log,
            )
            base, pid = f"ws://127.0.0.1:{port}", proc.pid
        try:
            code = asyncio.run(main_async(args, base, pid))
        finally:
            if proc is not None:
                exit_code = stop_server(proc)
                lines, tracebacks, errors = log_problems(log)
                print(f"server log: {lines} lines, {tracebacks} tracebacks, {len(errors)} ERROR lines; "
                      f"exit code {exit_code}")  # fmt: skip
    sys.exit(code)


if __name__ == "__main__":
    main()
