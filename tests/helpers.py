"""Shared test tools: a real uvicorn server in a thread, real WebSocket clients, timing unit."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
import websockets
from starlette.applications import Starlette

# Every timeout is a multiple of MS; set CALLASSIST_TEST_TIME_SCALE=3 on a slow machine.
MS = 0.001 * float(os.environ.get("CALLASSIST_TEST_TIME_SCALE", "1"))


@dataclass
class RunningServer:
    app: Starlette
    server: uvicorn.Server
    thread: threading.Thread
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def services(self) -> Any:
        return self.app.state.services

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_server(
    app: Starlette, *, max_frame_bytes: int = 64 * 1024, port: int = 0, ready_timeout: float = 300_000 * MS
) -> RunningServer:
    """Serve ``app`` with real uvicorn on a loopback port and wait until /healthz is ready."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        ws_max_size=max_frame_bytes,
        ws_per_message_deflate=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + ready_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    running = RunningServer(app, server, thread, bound)
    while True:
        try:
            if httpx.get(f"{running.http}/healthz", timeout=2).status_code == 200:
                return running
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            running.stop()
            raise RuntimeError("server never became ready")
        time.sleep(0.05)


@dataclass
class Listener:
    """A WebSocket client that records every event it receives, in order."""

    url: str
    events: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    socket: Any = None
    task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Listener:
        self.socket = await websockets.connect(self.url, max_size=2**22)
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        try:
            async for message in self.socket:
                self.events.append(json.loads(message))
        except websockets.ConnectionClosed:
            pass
        self.close_code = self.socket.close_code

    async def send(self, payload: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(payload))

    async def __aexit__(self, *exc: object) -> None:
        await self.socket.close()
        if self.task:
            await self.task

    def of_type(self, event_type: str, **match: Any) -> list[dict[str, Any]]:
        return [
            e for e in self.events if e["type"] == event_type and all(e.get(k) == v for k, v in match.items())
        ]

    async def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 5000 * MS
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.events):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; got {[e['type'] for e in self.events]}")
            if self.task and self.task.done() and not predicate(self.events):
                raise AssertionError(
                    f"socket closed ({self.close_code}); got {[e['type'] for e in self.events]}"
                )
            await asyncio.sleep(0.01)


class Softphone:
    """A softphone/integration client on /v1/calls/{call_id}."""

    def __init__(self, base: str, call_id: str) -> None:
        self.url = f"{base}/v1/calls/{call_id}"
        self.call_id = call_id
        self.socket: Any = None

    async def __aenter__(self) -> Softphone:
        self.socket = await websockets.connect(self.url, max_size=2**22)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.socket.close()

    async def send(self, payload: dict[str, Any] | str | bytes) -> None:
        await self.socket.send(payload if isinstance(payload, str | bytes) else json.dumps(payload))

    async def recv(self, timeout: float = 5000 * MS) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.socket.recv(), timeout))

    async def start(self, agent_id: str, **extra: Any) -> dict[str, Any]:
        await self.send({"type": "start", "agent_id": agent_id, **extra})
        return await self.recv()

    async def say(
        self,
        speaker: str,
        text: str,
        timestamp: float,
        utterance_id: str | None = None,
        *,
        final: bool = True,
    ) -> None:
        frame: dict[str, Any] = {
            "type": "utterance",
            "speaker": speaker,
            "text": text,
            "timestamp": timestamp,
            "is_final": final,
        }
        if utterance_id:
            frame["utterance_id"] = utterance_id
        await self.send(frame)

    async def end(self) -> dict[str, Any]:
        await self.send({"type": "end"})
        return await self.recv(timeout=15000 * MS)
