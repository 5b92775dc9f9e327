"""Scripted demo calls replayed through the real WebSocket protocol (``callassist demo``)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets
import yaml

log = logging.getLogger(__name__)
DEMO_CALLS_DIR = Path(__file__).resolve().parent / "demo" / "calls"


@dataclass(frozen=True)
class ScriptedCall:
    id: str
    title: str
    agent_id: str
    customer: dict[str, Any]
    utterances: list[dict[str, Any]]
    team: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return float(self.utterances[-1]["at"]) if self.utterances else 0.0


def load_demo_calls(directory: Path = DEMO_CALLS_DIR) -> list[ScriptedCall]:
    calls = []
    for path in sorted(directory.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        calls.append(
            ScriptedCall(
                id=raw.get("id", path.stem),
                title=raw.get("title", path.stem),
                agent_id=raw["agent_id"],
                customer=raw.get("customer") or {},
                utterances=raw["utterances"],
                team=raw.get("team"),
            )
        )
    return calls


async def replay_call(
    base_url: str,
    script: ScriptedCall,
    *,
    speed: float = 1.0,
    call_id: str | None = None,
    interim: bool = True,
    token: str | None = None,
) -> dict[str, Any]:
    """Stream one scripted call in call time (``speed`` x real time); returns the 'ended' ack."""
    call_id = call_id or f"{script.id}-{uuid.uuid4().hex[:6]}"
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with websockets.connect(f"{base_url}/v1/calls/{call_id}", additional_headers=headers) as sock:
        start = {
            "type": "start",
            "agent_id": script.agent_id,
            "customer": script.customer,
            "team": script.team,
        }
        await sock.send(json.dumps({k: v for k, v in start.items() if v is not None}))
        reply = json.loads(await sock.recv())
        if reply.get("type") != "started":
            raise RuntimeError(f"call {call_id} was not started: {reply}")
        t0 = time.monotonic()
        for index, utterance in enumerate(script.utterances):
            at = float(utterance["at"])
            delay = at / speed - (time.monotonic() - t0)
            text = str(utterance["text"])
            if interim and delay > 0.6 and len(text.split()) > 4:  # ASR shows words as they come
                await asyncio.sleep(delay - 0.5)
                partial = " ".join(text.split()[: max(2, len(text.split()) // 2)])
                await sock.send(
                    json.dumps(
                        {
                            "type": "utterance",
                            "speaker": utterance["speaker"],
                            "text": partial,
                            "timestamp": at,
                            "is_final": False,
                            "utterance_id": f"u-{index}",
                        }
                    )
                )
                delay = at / speed - (time.monotonic() - t0)
            if delay > 0:
                await asyncio.sleep(delay)
            await sock.send(
                json.dumps(
                    {
                        "type": "utterance",
                        "speaker": utterance["speaker"],
                        "text": text,
                        "timestamp": at,
                        "is_final": True,
                        "utterance_id": f"u-{index}",
                    }
                )
            )
        await sock.send(json.dumps({"type": "end"}))
        while True:
            reply = json.loads(await sock.recv())
            if reply.get("type") in ("ended", "error"):
                return reply


async def replay_calls(
    base_url: str,
    scripts: list[ScriptedCall],
    *,
    speed: float = 1.0,
    stagger: float = 3.0,
    token: str | None = None,
) -> None:
    async def one(offset: float, script: ScriptedCall) -> None:
        await asyncio.sleep(offset / speed)
        try:
            ack = await replay_call(base_url, script, speed=speed, token=token)
            log.info("demo call %s: %s", script.id, ack)
        except Exception:
            log.exception("demo call %s failed", script.id)

    async with asyncio.TaskGroup() as group:
        for index, script in enumerate(scripts):
            group.create_task(one(index * stagger, script))
