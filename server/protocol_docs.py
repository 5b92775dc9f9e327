"""Keeps the JSON Schema section of docs/protocol.md generated from assist/protocol.py."""

from __future__ import annotations

import json
from pathlib import Path

from assist.protocol import CLIENT_FRAME_TYPES, SERVER_EVENT_MODELS, json_schemas
from server.generated_docs import replace_section, update_file

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
    return replace_section(text, BEGIN, END, schema_section())


def update(path: Path = DOC) -> bool:
    """Rewrite the generated section; True if the file changed."""
    return update_file(path, render)
