"""A local OpenAI-compatible chat server for the LLM judge contract tests (real uvicorn).

Each request takes the next behaviour from a script (default: a valid answer):
"ok", "fenced" (valid JSON in a Markdown fence), "malformed" (not JSON), "schema" (JSON of
the wrong shape), "missing" (a criterion left out), "bad_index" (cites a non-existent
utterance), "slow" (answers after ``slow_s``), "500", "hang" (never answers).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.helpers import RunningServer, start_server


@dataclass
class FakeLLM:
    script: deque[str] = field(default_factory=deque)
    slow_s: float = 5.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: RunningServer | None = None

    def app(self) -> Starlette:
        async def healthz(request: Request) -> JSONResponse:
            return JSONResponse({"status": "ready"})

        async def chat(request: Request) -> JSONResponse:
            body = await request.json()
            self.requests.append({"body": body, "auth": request.headers.get("authorization")})
            mode = self.script.popleft() if self.script else "ok"
            if mode == "500":
                return JSONResponse({"error": {"message": "overloaded"}}, status_code=500)
            if mode == "hang":
                await asyncio.sleep(3600)
            if mode == "slow":
                await asyncio.sleep(self.slow_s)
            return JSONResponse(_completion(_content(mode, body)))

        return Starlette(
            routes=[Route("/healthz", healthz), Route("/v1/chat/completions", chat, methods=["POST"])]
        )

    def start(self) -> FakeLLM:
        self.server = start_server(self.app())
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"{self.server.http}/v1"

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def _content(mode: str, body: dict[str, Any]) -> str:
    user = body["messages"][-1]["content"]
    criteria = json.loads(user.split("Criteria:\n", 1)[1].split("\n\nTranscript:", 1)[0])
    last = max(int(i) for i in re.findall(r"^\[(\d+)\]", user, re.MULTILINE))
    answer = {
        "criteria": [
            {"id": c["id"], "score": 0.8, "evidence": [0, last], "rationale": f"judged {c['id']}"}
            for c in criteria
        ]
    }
    if mode == "malformed":
        return '{"criteria": [{"id": "opening_greeting", "score": 0.8,'
    if mode == "schema":
        return json.dumps({"criteria": [{"id": c["id"], "score": "high"} for c in criteria]})
    if mode == "missing":
        answer["criteria"] = answer["criteria"][1:]
    if mode == "bad_index":
        answer["criteria"][0]["evidence"] = [last + 50]
    text = json.dumps(answer)
    return f"```json\n{text}\n```" if mode == "fenced" else text


def _completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "qa-judge",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
    }
