"""Articles: the unit a contact center edits. Validation limits live here so the CLI,
the REST API and folder ingest all refuse the same things with the same messages."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_TITLE_CHARS = 300
MAX_BODY_CHARS = 200_000  # ~40 pages of text; a longer "article" is a manual and should be split
MAX_TAGS = 50
MAX_QUESTIONS = 50
MAX_QUESTION_CHARS = 300


class ArticleError(ValueError):
    """An article that cannot be ingested; the message names the source and the problem."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid_article") -> None:
        super().__init__(message)
        self.field = field
        self.code = code


@dataclass(frozen=True, slots=True)
class Article:
    id: str
    title: str
    body: str
    url: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    product: str | None = None
    language: str = "en"
    questions: tuple[str, ...] = field(default_factory=tuple)  # how customers ask for this article

    @property
    def content_hash(self) -> str:
        """Changes whenever anything a search could show or filter on changes."""
        payload = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["tags"] = list(self.tags)
        data["questions"] = list(self.questions)
        return data


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _tags(value: object) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items: Iterable[object] = re.split(r"[,;|]", value)
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise ArticleError("'tags' must be a list of strings or a comma-separated string", field="tags")
    tags = tuple(dict.fromkeys(t for t in (_text(i).lower() for i in items) if t))
    if len(tags) > MAX_TAGS:
        raise ArticleError(f"too many tags ({len(tags)} > {MAX_TAGS})", field="tags")
    return tags


def _questions(value: object, source: str) -> tuple[str, ...]:
    """Customer phrasings: a list, or one string with one phrasing per line or '|'."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        items: Iterable[object] = re.split(r"[\n|]", value)
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise ArticleError(f"{source}: 'questions' must be a list of strings", field="questions")
    questions = tuple(dict.fromkeys(q for q in (_text(i) for i in items) if q))
    if len(questions) > MAX_QUESTIONS:
        raise ArticleError(
            f"{source}: too many questions ({len(questions)} > {MAX_QUESTIONS})", field="questions"
        )
    for question in questions:
        if len(question) > MAX_QUESTION_CHARS:
            raise ArticleError(
                f"{source}: a question is {len(question)} characters (limit {MAX_QUESTION_CHARS})",
                field="questions",
            )
    return questions


def make_article(data: Mapping[str, Any], *, source: str = "article") -> Article:
    """Validate a mapping (JSON body, CSV row, front matter + body) into an Article."""
    article_id = _text(data.get("id"))
    if not article_id:
        raise ArticleError(f"{source}: 'id' is required", field="id")
    if not ID_PATTERN.match(article_id):
        raise ArticleError(
            f"{source}: id {article_id!r} must be 1-128 letters, digits, '.', '_' or '-' "
            "and start with a letter or digit",
            field="id",
        )
    title = _text(data.get("title"))
    body = _text(data.get("body"))
    if not title:
        raise ArticleError(f"{source}: 'title' is required", field="title")
    if not body:
        raise ArticleError(f"{source}: 'body' is required and must not be empty", field="body")
    if len(title) > MAX_TITLE_CHARS:
        raise ArticleError(
            f"{source}: title is {len(title)} characters (limit {MAX_TITLE_CHARS})",
            field="title",
            code="article_too_large",
        )
    if len(body) > MAX_BODY_CHARS:
        raise ArticleError(
            f"{source}: body is {len(body)} characters (limit {MAX_BODY_CHARS}); split it into articles",
            field="body",
            code="article_too_large",
        )
    language = _text(data.get("language")).lower() or "en"
    if not re.match(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$", language):
        raise ArticleError(
            f"{source}: language {language!r} is not a language tag like 'en'", field="language"
        )
    return Article(
        id=article_id,
        title=title,
        body=body,
        url=_text(data.get("url")) or None,
        tags=_tags(data.get("tags")),
        product=_text(data.get("product")).lower() or None,
        language=language,
        questions=_questions(data.get("questions"), source),
    )


def split_front_matter(text: str, *, source: str) -> tuple[dict[str, Any], str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        loaded = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise ArticleError(f"{source}: front matter is not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ArticleError(f"{source}: front matter must be a mapping")
    return loaded, text[match.end() :]


def first_heading(body: str) -> str | None:
    for line in body.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return None


def parse_markdown(text: str, *, default_id: str, source: str = "<text>") -> Article:
    meta, body = split_front_matter(text, source=source)
    title = meta.get("title") or first_heading(body)
    if not title:
        raise ArticleError(
            f"{source}: article has no title (front matter 'title' or a '# ' heading)", field="title"
        )
    return make_article(
        {**meta, "id": meta.get("id") or default_id, "title": title, "body": body}, source=source
    )


def load_markdown_dir(path: Path) -> list[Article]:
    """Kept for callers of the first version; ``kb_index.ingest.load_source`` reads every format."""
    from kb_index.ingest import load_source

    return load_source(path)
