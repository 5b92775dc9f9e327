"""What the benches share: a free loopback port, a `callassist serve` process started and
waited for until `/healthz` is 200 and stopped again, what its log says went wrong, and a
process's resident memory and CPU time."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    port: int,
    store: Path,
    *options: str,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], float]:
    """`callassist serve` on 127.0.0.1:port with ``options``; returns it once ready, and the seconds that took."""
    started = time.monotonic()
    command: Sequence[str] = [
        sys.executable,
        "-m",
        "server.cli",
        "serve",
        "--port",
        str(port),
        "--store",
        str(store),
    ]
    proc = subprocess.Popen(
        [*command, *options],
        cwd=ROOT,
        stdout=subprocess.DEVNULL if log is not None else None,
        stderr=log.open("wb") if log is not None else None,
        env={**os.environ, **(env or {})},
    )
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, time.monotonic() - started
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit("server exited during start-up" + (f"; see {log}" if log else ""))
        time.sleep(0.1)


def stop_server(proc: subprocess.Popen[bytes], timeout: float = 180) -> int:
    """SIGINT (graceful: live calls are ended and stored), then kill if it hangs; the exit code."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def log_problems(log: Path) -> tuple[int, int, list[str]]:
    """(lines, tracebacks, ERROR lines) of a server log."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
    tracebacks = sum("Traceback (most recent call last)" in line for line in lines)
    errors = [line for line in lines if " ERROR " in line or line.startswith("ERROR")]
    return len(lines), tracebacks, errors


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
