"""Debian's Chromium driven by Playwright for Python: launched by executable path, never a
Playwright browser download. `make browser` (run by `make test`) installs it with apt."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("CALLASSIST_CHROMIUM", "/usr/bin/chromium"))
# Playwright gives every launch a fresh temporary user-data-dir of its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_executable() -> str:
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} not found: run `make browser` (apt-get install chromium)")
    return str(CHROMIUM)


async def launch_chromium(playwright: Any, **options: Any) -> Any:
    """A headless Chromium from the system package."""
    return await playwright.chromium.launch(
        executable_path=chromium_executable(), args=CHROMIUM_ARGS, **options
    )
