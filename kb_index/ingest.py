"""Read articles from a folder of Markdown / HTML / plain-text files, or from JSONL and CSV
exports (columns ``id, title, body, url, tags, product, language`` and optionally
``questions``: customer phrasings, one per line or separated by ``|``).

HTML is reduced to Markdown-style headings and paragraphs so one chunker serves every format.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from kb_index.articles import Article, ArticleError, make_article, parse_markdown

MARKDOWN_SUFFIXES = {".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
TEXT_SUFFIXES = {".txt"}
FILE_SUFFIXES = MARKDOWN_SUFFIXES | HTML_SUFFIXES | TEXT_SUFFIXES
TABLE_SUFFIXES = {".jsonl", ".csv"}
CSV_COLUMNS = ("id", "title", "body", "url", "tags", "product", "language", "questions")


class _HtmlToMarkdown(HTMLParser):
    """Headings become '#' lines and block elements become paragraphs; chrome is dropped."""

    SKIP = {"script", "style", "nav", "header", "footer", "noscript", "template", "svg", "form", "aside"}
    BLOCKS = {"p", "div", "li", "tr", "pre", "blockquote", "section", "article", "dd", "dt", "table", "br"}
    META = {"id", "product", "tags", "keywords", "language", "url"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.meta: dict[str, str] = {}
        self.title = ""
        self._current: list[str] = []
        self._skip_depth = 0
        self._heading: int | None = None
        self._in_title = False

    def _flush(self) -> None:
        text = " ".join("".join(self._current).split())
        if text:
            self.blocks.append(("#" * self._heading + " " + text) if self._heading else text)
        self._current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag in self.SKIP:
            self._skip_depth += 1
        elif tag == "title":
            self._in_title = True
        elif tag == "html" and values.get("lang"):
            self.meta.setdefault("language", values["lang"].split("-")[0])
        elif tag == "meta" and values.get("name", "").lower().removeprefix("kb:") in self.META:
            name = values["name"].lower().removeprefix("kb:")
            self.meta["tags" if name == "keywords" else name] = values.get("content", "")
        elif tag == "link" and values.get("rel") == "canonical" and values.get("href"):
            self.meta.setdefault("url", values["href"])
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._heading = int(tag[1])
        elif tag in self.BLOCKS:
            self._flush()
            if tag == "li":
                self._current.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag == "title":
            self._in_title = False
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._heading = None
        elif tag in self.BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip_depth:
            self._current.append(data)

    def markdown(self) -> str:
        self._flush()
        return "\n\n".join(self.blocks)


def html_to_markdown(html: str) -> tuple[str, dict[str, str]]:
    """(Markdown-ish body, metadata from <title>, <meta name=...>, <html lang>, canonical link)."""
    parser = _HtmlToMarkdown()
    parser.feed(html)
    parser.close()
    meta = dict(parser.meta)
    if parser.title.strip():
        meta.setdefault("title", " ".join(parser.title.split()))
    return parser.markdown(), meta


def parse_html(text: str, *, default_id: str, source: str = "<html>") -> Article:
    body, meta = html_to_markdown(text)
    title = meta.get("title") or next((b[2:] for b in body.splitlines() if b.startswith("# ")), "")
    return make_article(
        {**meta, "id": meta.get("id") or default_id, "title": title, "body": body}, source=source
    )


def parse_text(text: str, *, default_id: str, source: str = "<text>") -> Article:
    """Plain text: the first non-empty line is the title, the rest the body."""
    lines = text.strip().splitlines()
    title = lines[0].strip() if lines else ""
    body = "\n".join(lines[1:]).strip() or title
    return make_article({"id": default_id, "title": title, "body": body}, source=source)


def parse_file(path: Path, *, default_id: str | None = None) -> Article:
    default_id = default_id or file_id(path.name)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ArticleError(f"{path}: not UTF-8 text") from None
    suffix = path.suffix.lower()
    if suffix in HTML_SUFFIXES:
        return parse_html(text, default_id=default_id, source=str(path))
    if suffix in TEXT_SUFFIXES:
        return parse_text(text, default_id=default_id, source=str(path))
    return parse_markdown(text, default_id=default_id, source=str(path))


def file_id(relative: str) -> str:
    """``billing/High Bill.md`` -> ``billing-high-bill``: stable, URL-safe and unique per path."""
    stem = relative.rsplit(".", 1)[0]
    return re.sub(r"[^a-z0-9._]+", "-", stem.lower()).strip("-._") or "article"


def _table_row(row: dict[str, Any], source: str) -> Article:
    if str(row.get("format") or "").lower() == "html":
        body, meta = html_to_markdown(str(row.get("body") or ""))
        row = {**meta, **{k: v for k, v in row.items() if v not in (None, "")}, "body": body}
    return make_article(row, source=source)


def read_jsonl(path: Path) -> Iterator[Article]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ArticleError(f"{path}:{number}: not valid JSON: {exc.msg}") from None
            if not isinstance(row, dict):
                raise ArticleError(f"{path}:{number}: each line must be a JSON object")
            yield _table_row(row, f"{path}:{number}")


def read_csv(path: Path) -> Iterator[Article]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = {"id", "title", "body"} - set(reader.fieldnames or ())
        if missing:
            raise ArticleError(
                f"{path}: missing column(s) {sorted(missing)}; expected {', '.join(CSV_COLUMNS)}"
            )
        csv.field_size_limit(2**24)
        for row in reader:
            yield _table_row(row, f"{path}:{reader.line_num}")


def iter_source(path: Path) -> Iterator[Article]:
    """Articles from one file or a folder (recursively), in a stable order."""
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            suffix = file.suffix.lower()
            if not file.is_file() or file.name.startswith(".") or file.stem.lower() == "readme":
                continue
            if suffix in FILE_SUFFIXES:
                yield parse_file(file, default_id=file_id(str(file.relative_to(path))))
            elif suffix in TABLE_SUFFIXES:
                yield from iter_source(file)
        return
    if not path.exists():
        raise ArticleError(f"knowledge base source not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        yield from read_jsonl(path)
    elif suffix == ".csv":
        yield from read_csv(path)
    elif suffix in FILE_SUFFIXES:
        yield parse_file(path)
    else:
        raise ArticleError(
            f"{path}: unsupported file type {suffix!r} (use .md, .html, .txt, .jsonl or .csv, or a folder)"
        )


def load_source(*paths: Path) -> list[Article]:
    """All articles of the given sources; a duplicate id anywhere is an error naming it."""
    articles: list[Article] = []
    seen: dict[str, str] = {}
    for path in paths:
        for article in iter_source(Path(path)):
            if article.id in seen:
                raise ArticleError(
                    f"duplicate article id {article.id!r} in {path} (also in {seen[article.id]})"
                )
            seen[article.id] = str(path)
            articles.append(article)
    return articles
