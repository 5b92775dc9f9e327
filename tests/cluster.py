"""Processes for the scale-out tests and benchmarks: a redis-server we may stop and restart,
real ``callassist serve`` processes, and ``callassist worker archive`` consumers."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CALLASSIST = [sys.executable, "-m", "server.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class RedisServer:
    """A private redis-server (AOF on, fsync always by default, like a deployment that must not
    lose stream entries) on a fixed port, so it can be stopped and started again at the same URL."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        appendonly: bool = True,
        appendfsync: str = "always",
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: apt-get install redis-server")
        self.binary = binary
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--dir", str(self.directory), "--appendonly", "yes" if self.appendonly else "no"]
        args += ["--appendfsync", self.appendfsync] if self.appendonly else []
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_for_port(self.port, 10):
            self.process.kill()
            raise RuntimeError(f"redis-server did not start on port {self.port}")
        return self

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM): Redis flushes its append-only file first."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


class Proc:
    """A child process whose output goes to a log file we can read back."""

    def __init__(self, args: Sequence[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        with log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                list(args), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=full_env
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        if self.alive():
            self.process.send_signal(sig)

    def stop(self, timeout: float = 30) -> int:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, like a crash or the OOM killer."""
        if self.alive():
            self.process.kill()
            self.process.wait()


class ServeProcess(Proc):
    """``callassist serve`` on its own port (loads the model; ready when /healthz says so).
    With ``workers`` > 1 uvicorn runs that many processes on the port, each named host:pid."""

    def __init__(
        self, name: str, bus_url: str, store: Path, log_dir: Path, *, workers: int = 1, **env: str
    ) -> None:
        self.name = name
        self.workers = workers
        self.port = free_port()
        args = [*CALLASSIST, "serve", "--port", str(self.port), "--bus", bus_url, "--store", str(store)]
        args += ["--log-level", "info", "--workers", str(workers)]
        names = {"CALLASSIST_PROCESS_NAME": name} if workers == 1 else {}
        super().__init__(args, log_dir / f"{name}.log", {**names, **env})

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def health(
        self, *, connected: bool | None = None, at_least: int | None = None, timeout: float = 900
    ) -> set[str]:
        """Poll /healthz until ``at_least`` distinct processes (default: all workers) answered
        ready (and, if given, with that bus state); returns their names."""
        wanted = at_least or self.workers
        seen: set[str] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log()[-3000:]}")
            try:
                response = httpx.get(f"{self.http}/healthz", timeout=2)
                body = response.json()
                if response.status_code == 200 and (connected is None or body["bus_connected"] is connected):
                    seen.add(body["process"])
                    if len(seen) >= wanted:
                        return seen
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.05 if seen else 0.2)
        raise RuntimeError(f"{self.name}: only {sorted(seen)} ready after {timeout} s:\n{self.log()[-3000:]}")

    def wait_ready(self, timeout: float = 900) -> ServeProcess:
        self.health(timeout=timeout)
        return self

    def metrics(self) -> dict[str, float]:
        """Samples of /metrics as {'name{labels}': value}."""
        text = httpx.get(f"{self.http}/metrics", timeout=5).text
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples


class ArchiveProcess(Proc):
    """``callassist worker archive``: the consumer group that centralises call records."""

    def __init__(self, name: str, bus_url: str, store: Path, log_dir: Path, *extra: str) -> None:
        self.name = name
        args = [*CALLASSIST, "worker", "archive", "--bus", bus_url, "--store", str(store)]
        args += ["--consumer", name, *extra]
        super().__init__(args, log_dir / f"{name}.log")


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        await asyncio.sleep(0.02)
