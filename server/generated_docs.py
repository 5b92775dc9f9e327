"""Docs with a generated section between two markers, kept current by a test."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path


def replace_section(text: str, begin: str, end: str, section: str) -> str:
    """``text`` with everything from ``begin`` to ``end`` (markers included) replaced by ``section``."""
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    return pattern.sub(lambda _m: section, text)


def update_file(path: Path, render: Callable[[str], str]) -> bool:
    """Rewrite the generated section of ``path``; True if the file changed."""
    current = path.read_text(encoding="utf-8")
    updated = render(current)
    if updated != current:
        path.write_text(updated, encoding="utf-8")
    return updated != current
