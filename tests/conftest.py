"""Fixtures: the real embedding model (loaded once), real servers, a real redis-server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import RunningServer, start_server

# The suite runs dozens of apps in one process: gc.freeze() after each app's model load would
# keep every earlier test's cyclic garbage for good. Servers started as processes inherit this.
os.environ.setdefault("CALLASSIST_GC_FREEZE", "false")


@pytest.fixture(scope="session")
def embedder() -> Any:
    """The production embedder (ONNX export of all-MiniLM-L6-v2, made by `make install`)."""
    from assist.embedding import create_embedder

    return create_embedder("onnx", cache_dir=Path("var/cache"))


@pytest.fixture(scope="session")
def demo_config() -> Any:
    from assist.config import AssistConfig

    return AssistConfig.load()


@pytest.fixture(scope="session")
def engine_parts(embedder: Any, demo_config: Any) -> Any:
    """Intent model and KB index fitted once for the pure tests."""
    from assist.engine import build_knowledge, fit_intents

    return fit_intents(demo_config, embedder), build_knowledge(demo_config, embedder)


@pytest.fixture
def server_factory(embedder: Any, demo_config: Any, tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """Start real uvicorn servers (each on a free loopback port) with settings overrides."""
    from server.app import create_app
    from server.settings import Settings

    running: list[RunningServer] = []

    def make(**overrides: Any) -> RunningServer:
        config = overrides.pop("assist_config", None) or demo_config
        overrides.setdefault("store_path", tmp_path / f"calls-{len(running)}.db")
        overrides.setdefault("process_name", f"test-{len(running)}")
        settings = Settings(**overrides)
        app = create_app(settings, embedder=embedder, config=config)
        server = start_server(app, max_frame_bytes=settings.max_frame_bytes)
        running.append(server)
        return server

    yield make
    for server in running:
        server.stop()


@pytest.fixture(scope="module")
def shared_server(embedder: Any, demo_config: Any) -> Iterator[RunningServer]:
    """One server for a module of tests that do not need special settings."""
    from server.app import create_app
    from server.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(store_path=Path(tmp) / "calls.db", process_name="shared")
        server = start_server(create_app(settings, embedder=embedder, config=demo_config))
        yield server
        server.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """REDIS_URL if set; otherwise a private redis-server on a free port. Never skipped."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server not found: install it (apt-get install redis-server) or set REDIS_URL")
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                tmp,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
        proc.terminate()
        proc.wait(timeout=10)
