"""Time from `callassist serve` to `/healthz` 200, cold and warm.

Cold: empty caches (only the ONNX export is kept), so the start embeds and indexes the
knowledge base, the intent examples, the compliance exemplars and the sentiment training
set — what a first start with a new config costs. Warm: every later start, and the first
one after `callassist prepare` (which `make install` runs).

    .venv/bin/python bench/startup.py [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def time_to_ready(cache: Path, store: Path) -> tuple[float, float]:
    port = free_port()
    env_cache = {"CALLASSIST_CACHE_DIR": str(cache), "CALLASSIST_KB_DIR": str(cache / "kb")}
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "server.cli",
            "serve",
            "--port",
            str(port),
            "--store",
            str(store),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**__import__("os").environ, **env_cache},
    )
    try:
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                if response.status_code == 200:
                    return time.monotonic() - started, response.json()["ready_after_s"]
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise SystemExit("server exited during start-up")
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    models = ROOT / "var" / "cache" / "models"
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        cache.mkdir()
        if models.exists():
            shutil.copytree(models, cache / "models")  # the export made by `make install`
        for run in range(args.runs):
            kind = "cold" if run == 0 else "warm"
            wall, inside = time_to_ready(cache, Path(tmp) / f"s{run}.db")
            print(
                f"run {run + 1} ({kind}): /healthz 200 after {wall:.1f} s (process start -> ready {inside:.1f} s)"
            )


if __name__ == "__main__":
    main()
