"""Keeps docs/configuration.md's environment-variable tables generated from the settings classes.

.venv/bin/python -m server.settings_docs      # rewrite the generated section
"""

from __future__ import annotations

from pathlib import Path

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from server.generated_docs import replace_section, update_file

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
BEGIN, END = "<!-- BEGIN GENERATED SETTINGS -->", "<!-- END GENERATED SETTINGS -->"


def settings_classes() -> list[tuple[str, type[BaseSettings]]]:
    from analytics.config import AnalyticsSettings
    from qa.settings import QASettings
    from routing.extension import RoutingSettings
    from server.settings import Settings

    return [
        ("Server", Settings),
        ("Quality assurance", QASettings),
        ("Routing", RoutingSettings),
        ("Analytics", AnalyticsSettings),
    ]


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
        return "(per process)" if isinstance(value, str) else f"`{value!r}`"
    if field.default is None:
        return "unset"
    value = field.default
    if hasattr(value, "get_secret_value"):
        return "unset"
    return f"`{value}`" if not isinstance(value, str) else f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_section() -> str:
    parts = [BEGIN, ""]
    for title, cls in settings_classes():
        prefix = str(cls.model_config.get("env_prefix", ""))
        parts += [f"### {title}\n", "| environment variable | default | meaning |", "|---|---|---|"]
        for name, field in cls.model_fields.items():
            parts.append(
                f"| `{prefix}{name.upper()}` | {_cell(_default(field))} | {_cell(field.description or '')} |"
            )
        parts.append("")
    parts.append(END)
    return "\n".join(parts)


def render(text: str) -> str:
    return replace_section(text, BEGIN, END, settings_section())


def update(path: Path = DOC) -> bool:
    """Rewrite the generated section; True if the file changed."""
    return update_file(path, render)


if __name__ == "__main__":
    print(f"{DOC}: {'updated' if update() else 'already current'}")
