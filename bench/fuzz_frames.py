"""Protocol fuzz run: >= 100,000 random and mutated frames across many sockets on all three
WebSocket endpoints of a real `callassist serve` process.

Frame kinds: random bytes (binary frames), random text, random JSON, mutated valid frames
(fields dropped/added/renamed/retyped, NaN/Infinity, huge numbers, deep nesting, escaped lone
surrogates, long strings, truncation), oversized frames, valid binary JSON, and interleaved
valid traffic (start, utterances, end). Every bad frame must be answered by an error frame
or a proper close code; on the softphone socket the expected code is predicted with the
parser itself (assist.protocol) and compared. Sockets reconnect after every close.

At the end: the process is alive, /healthz is 200, a clean call still gets its assists, and
the server's log (stderr, captured) has no traceback and no ERROR line.

    .venv/bin/python bench/fuzz_frames.py                      # 100,000 frames, 48 sockets
    .venv/bin/python bench/fuzz_frames.py --frames 5000 --sockets 16
    .venv/bin/python bench/fuzz_frames.py --url ws://127.0.0.1:8000 --token T   # a running server
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from assist.protocol import (  # noqa: E402
    DEFAULT_MAX_FRAME_BYTES,
    ProtocolError,
    StartFrame,
    UtteranceFrame,
    parse_client_frame,
)
from bench.serving import free_port, log_problems, start_server, stop_server  # noqa: E402

UTTERANCES = ROOT / "server" / "demo" / "kb_eval.csv"
REPLY_TIMEOUT_S = 10.0
# Each socket here sends ~80 frames/s (a frame, then a ping), over the default per-connection
# limit: a refused frame is answered `rate_limited` instead of its parse result, which would
# blur what this run checks. The limiter has its own tests (tests/test_security.py); against a
# running server (--url), raise CALLASSIST_FRAME_RATE_PER_SECOND the same way.
NO_RATE_LIMIT = {"CALLASSIST_FRAME_RATE_PER_SECOND": "1000000", "CALLASSIST_FRAME_RATE_BURST": "1000000"}
MAX_ERRORS_IN_A_ROW = 10  # server default (CALLASSIST_MAX_CONSECUTIVE_ERRORS)
PROPER_CLOSES = {1000, 1008, 1009, 1013}
ID = re.compile(r"^[A-Za-z0-9._:@\-]{1,128}$")


# ---------------------------------------------------------------------- frame generators


class Frames:
    def __init__(self, rng: random.Random, texts: list[str], max_bytes: int) -> None:
        self.rng, self.texts, self.max_bytes = rng, texts, max_bytes

    def text(self) -> str:
        return self.rng.choice(self.texts)

    def valid_utterance(self, t: float) -> dict[str, Any]:
        return {"type": "utterance", "speaker": self.rng.choice(["customer", "agent"]), "text": self.text(),
                "timestamp": t, "is_final": self.rng.random() < 0.3,
                "utterance_id": f"u-{self.rng.randrange(10**9)}"}  # fmt: skip

    def valid(self, t: float) -> dict[str, Any]:
        kind = self.rng.choice(["start", "utterance", "utterance", "end"])
        if kind == "start":
            return {
                "type": "start",
                "agent_id": f"fz-agent-{self.rng.randrange(50)}",
                "customer": {"id": "c1"},
            }
        if kind == "end":
            return {"type": "end", "reason": "completed"}
        return self.valid_utterance(t)

    def weird_value(self) -> Any:
        r = self.rng
        choice = r.randrange(12)
        if choice == 0:
            return None
        if choice == 1:
            return r.choice([True, False])
        if choice == 2:
            return r.choice([10**30, -(10**30), 2**63, -1, 0, 10**300])
        if choice == 3:
            return r.choice([float("nan"), float("inf"), float("-inf"), 1e308, -0.0, 5e-324])
        if choice == 4:
            return "".join(chr(r.randrange(32, 0x2FFF)) for _ in range(r.randrange(0, 40)))
        if choice == 5:
            return "x" * r.choice([8_001, 20_000, 60_000])
        if choice == 6:
            return self.nested(r.randrange(2, 400))
        if choice == 7:
            return [self.text(), 1, None]
        if choice == 8:
            return {"a": {"b": [1, 2, {"c": float("nan")}]}}
        if choice == 9:
            return ""
        if choice == 10:
            return "   "
        return r.choice(["customer", "agent", "start", "utterance", "end", "ping", "watch"])

    def nested(self, depth: int) -> Any:
        value: Any = 1
        for _ in range(depth):
            value = [value] if self.rng.random() < 0.5 else {"k": value}
        return value

    def mutated(self, t: float) -> str:
        r = self.rng
        frame = self.valid(t)
        keys = list(frame)
        op = r.randrange(9)
        if op == 0 and keys:
            frame.pop(r.choice(keys))
        elif op == 1:
            frame[r.choice(["extra", "Type", "", "\u0000", "text ", "customer"])] = self.weird_value()
        elif op == 2 and keys:
            frame[r.choice(keys) + r.choice(["_", "X", " "])] = frame.pop(r.choice(keys))
        elif op in (3, 4):
            frame[
                r.choice(keys + ["timestamp", "text", "agent_id", "customer", "started_at", "is_final"])
            ] = self.weird_value()
        text = json.dumps(frame, ensure_ascii=r.random() < 0.5, allow_nan=True)
        if op == 5:
            text = text[: r.randrange(max(1, len(text)))]
        elif op == 6:  # an escaped lone surrogate inside a string
            text = (
                text.replace('"', '"\\ud83d', 1)
                if r.random() < 0.5
                else text.replace('"text": "', '"text": "\\udc00', 1)
            )
        elif op == 7:
            text = r.choice(["[", '{"a":']) * r.randrange(500, 5000)
        elif op == 8:
            text = r.choice(["\ufeff", " ", "\n", "[", "{}"]) + text
        return text

    def random_json(self) -> str:
        value = self.rng.choice([self.weird_value(), [self.weird_value()], {"type": self.weird_value()},
                                 {self.text()[:10]: self.weird_value()}])  # fmt: skip
        return json.dumps(value, allow_nan=True)

    def random_text(self) -> str:
        r = self.rng
        return "".join(
            chr(r.choice([r.randrange(0, 128), r.randrange(128, 0xD7FF)])) for _ in range(r.randrange(1, 300))
        )

    def random_bytes(self) -> bytes:
        return os.urandom(self.rng.randrange(1, 600))

    def oversized(self) -> str | bytes:
        body = json.dumps({"type": "utterance", "speaker": "agent", "text": "é" * (self.max_bytes // 2 + 100),
                           "timestamp": 1})  # fmt: skip
        return body.encode() if self.rng.random() < 0.2 else body

    def of_kind(self, kind: str, t: float, valid: dict[str, Any]) -> str | bytes:
        """A frame of one KIND_WEIGHTS kind; ``valid`` is a well-formed frame for the endpoint
        (sent as text, or as a binary frame, which every endpoint refuses)."""
        if kind == "valid":
            return json.dumps(valid)
        if kind == "binary_json":
            return json.dumps(valid).encode()
        if kind == "mutated":
            return self.mutated(t)
        if kind == "random_json":
            return self.random_json()
        if kind == "random_text":
            return self.random_text()
        if kind == "random_bytes":
            return self.random_bytes()
        return self.oversized()


def softphone_valid(frames: Frames, t: float, started: bool, worker: int) -> dict[str, Any]:
    """A well-formed softphone frame; before its start, often the start itself."""
    frame = frames.valid(t) if started else frames.rng.choice([frames.valid(t), {"type": "start",
        "agent_id": f"fz-agent-{worker}", "customer": {"id": "c"}}])  # fmt: skip
    if started and frame["type"] == "end" and frames.rng.random() < 0.7:
        frame = frames.valid_utterance(t)  # calls last a while
    return frame


def listener_valid(rng: random.Random) -> dict[str, Any]:
    """A well-formed frame from an agent widget or a wall board."""
    return rng.choice([{"type": "ping"}, {"type": "watch", "call_id": f"fz-{rng.randrange(99)}"},
                       {"type": "unwatch", "call_id": "x"},
                       {"type": "feedback", "call_id": "nope", "utterance_id": "u", "target": "suggestion"}])  # fmt: skip


KIND_WEIGHTS = {
    "valid": 22,
    "mutated": 40,
    "random_json": 12,
    "random_text": 10,
    "random_bytes": 8,
    "binary_json": 3,
    "oversized": 1,
}


class Stats:
    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.by_endpoint: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.closes: Counter[int] = Counter()
        self.unanswered: Counter[str] = Counter()
        self.mismatched: Counter[str] = Counter()
        self.examples: list[str] = []
        self.connections = 0
        self.replies = 0

    def total(self) -> int:
        return sum(self.sent.values())


def predicted(data: str | bytes, max_bytes: int) -> tuple[str | None, Any]:
    """What the softphone endpoint must answer: an error code (None for a valid frame) and the frame."""
    if len(data) > max_bytes:  # uvicorn refuses it before the app sees it: close 1009
        return "frame_too_large", None
    try:
        return None, parse_client_frame(data, max_bytes=max_bytes)
    except ProtocolError as error:
        return error.code, None


# ---------------------------------------------------------------------- endpoints


def is_ping(data: str | bytes) -> bool:
    try:
        frame = json.loads(data) if isinstance(data, str) else None
    except (ValueError, RecursionError):
        return False
    return isinstance(frame, dict) and frame.get("type") == "ping"


def listener_must_error(data: str | bytes, endpoint: str) -> bool:
    """Whether an agent/supervisor socket must answer this frame with an error."""
    if isinstance(data, bytes):
        return True
    try:
        frame = json.loads(data)
    except (ValueError, RecursionError):
        return True
    if not isinstance(frame, dict):
        return True
    if frame.get("type") == "ping":
        return False
    if endpoint == "supervisor" and frame.get("type") in ("watch", "unwatch"):
        call_id = frame.get("call_id")
        return not (isinstance(call_id, str) and ID.match(call_id))
    return True


async def call_worker(
    base: str, token: str, stats: Stats, frames: Frames, budget: list[int], worker: int
) -> None:
    """Softphone sockets: every frame's answer is predicted and checked."""
    rng = frames.rng
    conn = 0
    while budget[0] > 0:
        conn += 1
        call_id = f"fz-{os.getpid()}-{worker}-{conn}"
        stats.connections += 1
        async with websockets.connect(f"{base}/v1/calls/{call_id}{token}", max_size=2**24) as ws:
            started, errors_in_a_row, t = False, 0, 0.0
            while budget[0] > 0:
                kind = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
                t += rng.uniform(0.1, 3)
                data = frames.of_kind(kind, t, softphone_valid(frames, t, started, worker))
                code, parsed = predicted(data, frames.max_bytes)
                expect_reply = True
                if code is None:  # valid at the protocol level: the call state decides
                    if isinstance(parsed, StartFrame):
                        code = "already_started" if started else "started"
                    elif isinstance(parsed, UtteranceFrame):
                        code = None if started else "not_started"
                        expect_reply = not started
                    else:
                        code = "ended" if started else "not_started"
                stats.sent[kind] += 1
                stats.by_endpoint["call"] += 1
                budget[0] -= 1
                try:
                    await ws.send(data)
                except websockets.ConnectionClosed:
                    break
                if not expect_reply:
                    errors_in_a_row = 0
                    continue
                try:
                    reply = json.loads(await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT_S))
                except websockets.ConnectionClosed as closed:
                    close = closed.rcvd.code if closed.rcvd else 1006
                    stats.closes[close] += 1
                    if close not in PROPER_CLOSES:
                        stats.unanswered[kind] += 1
                        if len(stats.examples) < 20:
                            stats.examples.append(f"call: close {close} after {kind} {str(data)[:120]!r}")
                    elif code != "frame_too_large" and close == 1009:
                        stats.mismatched[f"{code}->close 1009"] += 1
                    break
                except TimeoutError:
                    stats.unanswered[kind] += 1
                    stats.examples.append(f"call: no reply to {kind} {str(data)[:120]!r}")
                    break
                stats.replies += 1
                got = reply.get("code") if reply.get("type") == "error" else reply.get("type")
                if reply.get("type") == "error":
                    stats.errors[reply["code"]] += 1
                    errors_in_a_row += 1
                else:
                    errors_in_a_row = 0
                if got != code:
                    stats.mismatched[f"{code}->{got}"] += 1
                    if len(stats.examples) < 20:
                        stats.examples.append(f"call: expected {code}, got {reply} for {str(data)[:160]!r}")
                if got == "started":
                    started = True
                if got == "ended":
                    try:
                        await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT_S)
                    except websockets.ConnectionClosed as closed:
                        stats.closes[closed.rcvd.code if closed.rcvd else 1006] += 1
                    break
                if errors_in_a_row >= MAX_ERRORS_IN_A_ROW:
                    try:
                        await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT_S)
                        stats.mismatched["no 1008 after too many errors"] += 1
                    except websockets.ConnectionClosed as closed:
                        stats.closes[closed.rcvd.code if closed.rcvd else 1006] += 1
                    except TimeoutError:
                        stats.unanswered["too_many_errors"] += 1
                    break


async def listener_worker(
    base: str, token: str, endpoint: str, stats: Stats, frames: Frames, budget: list[int], worker: int
) -> None:
    """Agent and supervisor sockets: after each frame a ping; an error (or a close) must come
    before the pong unless the frame was a valid one (ping, watch/unwatch, feedback)."""
    rng = frames.rng
    while budget[0] > 0:
        path = f"/v1/agents/fz-listener-{worker}" if endpoint == "agent" else "/v1/supervisor"
        stats.connections += 1
        async with websockets.connect(f"{base}{path}{token}", max_size=2**24) as ws:
            while budget[0] > 0:
                kind = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
                data = frames.of_kind(kind, 0, listener_valid(rng))
                must_error = listener_must_error(data, endpoint)
                stats.sent[kind] += 1
                stats.by_endpoint[endpoint] += 1
                budget[0] -= 1
                oversized = len(data) > frames.max_bytes
                try:
                    await ws.send(data)
                    if not oversized:  # after an oversized frame only the 1009 close may come
                        await ws.send('{"type":"ping"}')
                    answered = False
                    pongs = 2 if is_ping(data) else 1  # the frame itself may be a ping
                    while True:
                        reply = json.loads(await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT_S))
                        if reply.get("type") == "error":
                            stats.errors[reply["code"]] += 1
                            answered = True
                        elif reply.get("type") == "pong":
                            pongs -= 1
                            if pongs == 0:
                                break
                        elif reply.get("type") in ("feedback", "feedback_saved", "call_state"):
                            answered = True
                    stats.replies += 1
                    if oversized:
                        stats.mismatched["oversized frame not closed 1009"] += 1
                    if must_error and not answered:
                        stats.unanswered[kind] += 1
                        if len(stats.examples) < 20:
                            stats.examples.append(f"{endpoint}: no error for {kind} {str(data)[:120]!r}")
                except websockets.ConnectionClosed as closed:
                    close = closed.rcvd.code if closed.rcvd else 1006
                    stats.closes[close] += 1
                    if close not in PROPER_CLOSES:
                        stats.unanswered[kind] += 1
                        if len(stats.examples) < 20:
                            stats.examples.append(
                                f"{endpoint}: close {close} after {kind} {str(data)[:120]!r}"
                            )
                    break
                except TimeoutError:
                    stats.unanswered[kind] += 1
                    stats.examples.append(f"{endpoint}: no pong after {kind} {str(data)[:120]!r}")
                    break


# ---------------------------------------------------------------------- final checks


async def clean_call(base: str, token: str) -> int:
    """A valid call after the storm: how many assists its agent widget receives (expect 3)."""
    call_id, agent_id = f"fz-clean-{os.getpid()}", "fz-clean-agent"
    texts = ["I was charged twice on my bill this month", "my internet keeps dropping every evening",
             "I want to cancel my contract"]  # fmt: skip
    async with (
        websockets.connect(f"{base}/v1/agents/{agent_id}{token}") as agent,
        websockets.connect(f"{base}/v1/calls/{call_id}{token}") as phone,
    ):
        if True:
            await phone.send(json.dumps({"type": "start", "agent_id": agent_id}))
            await phone.recv()
            for i, text in enumerate(texts):
                await phone.send(json.dumps({"type": "utterance", "speaker": "customer", "text": text,
                                             "timestamp": i * 5.0, "utterance_id": f"c-{i}"}))  # fmt: skip
            assists = 0
            deadline = time.monotonic() + 30
            while assists < len(texts) and time.monotonic() < deadline:
                try:
                    event = json.loads(await asyncio.wait_for(agent.recv(), 5))
                except TimeoutError:
                    break
                assists += event.get("type") == "assist" and event.get("call_id") == call_id
            await phone.send(json.dumps({"type": "end"}))
            await phone.recv()
    return assists


async def run(args: argparse.Namespace, base: str) -> tuple[Stats, float]:
    texts = [row["query"] for row in csv.DictReader(UTTERANCES.open(encoding="utf-8"))]
    token = f"?token={args.token}" if args.token else ""
    stats = Stats()
    budget = [args.frames]
    started = time.perf_counter()
    workers = []
    for i in range(args.sockets):
        frames = Frames(random.Random(args.seed * 1000 + i), texts, args.max_frame_bytes)
        endpoint = "call" if i % 4 < 2 else ("agent" if i % 4 == 2 else "supervisor")
        if endpoint == "call":
            workers.append(call_worker(base, token, stats, frames, budget, i))
        else:
            workers.append(listener_worker(base, token, endpoint, stats, frames, budget, i))

    async def forever(work: Any, i: int) -> None:
        while True:
            try:
                await work
                return
            except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosed) as exc:
                stats.examples.append(f"worker {i}: connection failed: {exc!r}")
                return

    async def progress() -> None:
        while True:
            await asyncio.sleep(10)
            done = args.frames - budget[0]
            print(f"  {done} frames, {done / (time.perf_counter() - started):.0f}/s", flush=True)

    reporter = asyncio.create_task(progress())
    await asyncio.gather(*(forever(w, i) for i, w in enumerate(workers)))
    reporter.cancel()
    return stats, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--sockets", type=int, default=48, help="concurrent sockets (half softphones)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--url", help="ws://host:port of a running server (default: start one)")
    parser.add_argument("--token", help="access token, sent as ?token= (when auth is on)")
    parser.add_argument("--embedder", default="onnx", help="embedder of the started server")
    parser.add_argument("--max-frame-bytes", type=int, default=DEFAULT_MAX_FRAME_BYTES)
    parser.add_argument("--log", type=Path, help="keep the server log here (default: a temp file)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        log = args.log or Path(tmp) / "server.log"
        proc = None
        base = args.url
        if base is None:
            port = free_port()
            proc, _ = start_server(
                port,
                Path(tmp) / "fuzz.db",
                "--log-level",
                "info",
                "--embedder",
                args.embedder,
                log=log,
                env=NO_RATE_LIMIT,
            )
            base = f"ws://127.0.0.1:{port}"
        http = base.replace("ws://", "http://").replace("wss://", "https://")
        try:
            stats, elapsed = asyncio.run(run(args, base))
            alive = proc is None or proc.poll() is None
            health = httpx.get(f"{http}/healthz", timeout=10).status_code
            assists = asyncio.run(clean_call(base, f"?token={args.token}" if args.token else ""))
        finally:
            exit_code = stop_server(proc) if proc is not None else None
        lines, tracebacks, error_lines = log_problems(log)
    crashes = int(not alive) + int(exit_code not in (None, 0))

    print(f"frames sent: {stats.total()} in {elapsed:.1f} s ({stats.total() / elapsed:.0f} frames/s), "
          f"{stats.connections} connections, {args.sockets} concurrent sockets")  # fmt: skip
    print("  by kind:     " + ", ".join(f"{k} {v}" for k, v in stats.sent.most_common()))
    print("  by endpoint: " + ", ".join(f"{k} {v}" for k, v in stats.by_endpoint.most_common()))
    print("error frames by code: " + ", ".join(f"{k} {v}" for k, v in stats.errors.most_common()))
    print("closes by code: " + ", ".join(f"{k} {v}" for k, v in sorted(stats.closes.items())))
    print(f"bad frames unanswered (no error frame, no proper close): {sum(stats.unanswered.values())} "
          f"{dict(stats.unanswered)}")  # fmt: skip
    print(f"softphone answers differing from the parser's prediction: {sum(stats.mismatched.values())} "
          f"{dict(stats.mismatched)}")  # fmt: skip
    for example in stats.examples[:10]:
        print("  e.g. " + example)
    print(f"server alive after the run: {alive}; exit code after SIGINT: {exit_code}; /healthz {health}")
    print(f"clean call after the run: {assists}/3 assists")
    print(f"server log: {lines} lines, {tracebacks} tracebacks, {len(error_lines)} ERROR lines")
    for line in error_lines[:10]:
        print("  " + line[:200])
    print(f"crashes: {crashes}; unhandled exceptions in the log: {tracebacks + len(error_lines)}")
    ok = crashes == 0 and tracebacks == 0 and not error_lines and health == 200 and assists == 3
    ok = ok and not stats.unanswered and stats.total() >= args.frames
    print("RESULT:", "PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
