"""Articles as ingested from a folder of Markdown files with YAML front matter."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)


class ArticleError(ValueError):
    """An article that cannot be ingested; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class Article:
    id: str
    title: str
    body: str
    url: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    product: str | None = None
    language: str = "en"


def parse_markdown(text: str, *, default_id: str, source: str = "<text>") -> Article:
    meta: dict[str, object] = {}
    body = text
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            loaded = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError as exc:
            raise ArticleError(f"{source}: front matter is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ArticleError(f"{source}: front matter must be a mapping")
        meta = loaded
        body = text[match.end() :]
    title = str(meta.get("title") or _first_heading(body) or "").strip()
    if not title:
        raise ArticleError(f"{source}: article has no title (front matter 'title' or a '# ' heading)")
    if not body.strip():
        raise ArticleError(f"{source}: article body is empty")
    tags = meta.get("tags") or ()
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    return Article(
        id=str(meta.get("id") or default_id),
        title=title,
        body=body.strip(),
        url=str(meta["url"]) if meta.get("url") else None,
        tags=tuple(str(t) for t in tags),  # type: ignore[union-attr]
        product=str(meta["product"]) if meta.get("product") else None,
        language=str(meta.get("language") or "en"),
    )


def _first_heading(body: str) -> str | None:
    for line in body.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return None


def load_markdown_dir(path: Path) -> list[Article]:
    if not path.is_dir():
        raise ArticleError(f"knowledge base folder not found: {path}")
    articles = [
        parse_markdown(file.read_text(encoding="utf-8"), default_id=file.stem, source=str(file))
        for file in sorted(path.glob("**/*.md"))
        if file.name.lower() != "readme.md"
    ]
    seen: set[str] = set()
    for article in articles:
        if article.id in seen:
            raise ArticleError(f"duplicate article id {article.id!r} in {path}")
        seen.add(article.id)
    return articles
