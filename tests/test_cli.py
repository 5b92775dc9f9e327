"""The console script: `callassist serve` runs the bundled demo; `callassist demo` drives it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers import MS

ROOT = Path(__file__).resolve().parent.parent
CALLASSIST = Path(sys.executable).parent / "callassist"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_then_demo(tmp_path: Path) -> None:
    """`callassist serve` (no --config: the demo) becomes ready; `callassist demo` streams the
    scripted calls through it and every one is stored."""
    port = free_port()
    env = {**os.environ, "CALLASSIST_CACHE_DIR": str(ROOT / "var" / "cache")}
    server = subprocess.Popen(
        [
            str(CALLASSIST),
            "serve",
            "--port",
            str(port),
            "--store",
            str(tmp_path / "calls.db"),
            "--log-level",
            "warning",
        ],
        cwd=tmp_path,
        env=env,
    )
    try:
        deadline = time.monotonic() + 180_000 * MS
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                if health.status_code == 200:
                    break
                assert health.json()["status"] == "loading"
            except httpx.TransportError:
                pass
            assert server.poll() is None, "server exited"
            assert time.monotonic() < deadline, "not ready in time"
            time.sleep(0.1)
        demo = subprocess.run(
            [str(CALLASSIST), "demo", "--server", f"ws://127.0.0.1:{port}", "--speed", "50"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert demo.returncode == 0, demo.stderr
        assert demo.stdout.count("'stored': True") == 6
        calls = httpx.get(f"http://127.0.0.1:{port}/v1/calls").json()["calls"]
        assert len(calls) == 6
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)


def test_demo_button_replays_through_the_server(shared_server) -> None:  # type: ignore[no-untyped-def]
    """POST /v1/demo/run (the home page button) replays the demo calls through the server's own protocol."""
    response = httpx.post(f"{shared_server.http}/v1/demo/run", params={"speed": 50})
    assert response.status_code == 202 and len(response.json()["started"]) == 6
    deadline = time.monotonic() + 60_000 * MS
    while True:
        calls = httpx.get(f"{shared_server.http}/v1/calls", params={"limit": 1000}).json()["calls"]
        if len([c for c in calls if c["agent_id"] in ("agent-1", "agent-2", "agent-3")]) >= 6:
            break
        assert time.monotonic() < deadline, f"only {len(calls)} calls stored"
        time.sleep(0.2)
    assert httpx.post(f"{shared_server.http}/v1/demo/run", params={"speed": 1000}).status_code == 422


def test_configuration_doc_is_current() -> None:
    """docs/configuration.md lists every setting with its default (run
    `.venv/bin/python -m server.settings_docs` after adding or changing one)."""
    from server.settings_docs import DOC, render

    text = DOC.read_text(encoding="utf-8")
    assert render(text) == text
