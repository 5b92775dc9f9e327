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
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.serving import free_port, start_server, stop_server  # noqa: E402


def time_to_ready(cache: Path, store: Path) -> tuple[float, float]:
    """Seconds to /healthz 200 seen from outside, and the server's own process start -> ready."""
    port = free_port()
    env_cache = {"CALLASSIST_CACHE_DIR": str(cache), "CALLASSIST_KB_DIR": str(cache / "kb")}
    proc, wall = start_server(port, store, "--log-level", "warning", env=env_cache)
    try:
        return wall, httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["ready_after_s"]
    finally:
        stop_server(proc, timeout=60)


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
