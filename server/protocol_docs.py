"""Keeps the JSON Schema section of docs/protocol.md generated from assist/protocol.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

from assist.protocol import CLIENT_FRAME_TYPES, SERVER_EVENT_MODELS, json_schemas

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
BEGIN, END = "<!-- BEGIN GENERATED SCHEMAS -->", "<!-- END GENERATED SCHEMAS -->"


def schema_section() -> str:
    schemas = json_schemas()
    parts = [BEGIN, ""]
    for title, names in (("Client → server", CLIENT_FRAME_TYPES), ("Server → client", SERVER_EVENT_MODELS)):
        parts.append(f"### {title}\n")
        for name in names:
            parts += [f"#### `{name}`\n", "```json", json.dumps(schemas[name], indent=2), "```", ""]
    parts.append(END)
    return "\n".join(parts)


def render(text: str) -> str:
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    return pattern.sub(lambda _m: schema_section(), text)


def update(path: Path = DOC) -> bool:
    """Rewrite the generated section; True if the file changed."""
    current = path.read_text(encoding="utf-8")
    updated = render(current)
    if updated != current:
        path.write_text(updated, encoding="utf-8")
    return updated != current
