"""Split articles into overlapping, heading-aware chunks for retrieval."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from kb_index.articles import Article

# ~100 word pieces: all-MiniLM-L6-v2 was trained on pieces up to 128 tokens and truncates at 256;
# shorter, single-topic chunks also score better on the demo evaluation (docs/knowledge-base.md).
MAX_CHUNK_CHARS = 400
OVERLAP_CHARS = 80


@dataclass(frozen=True, slots=True)
class Chunk:
    id: str
    article_id: str
    title: str
    url: str | None
    anchor: str
    heading: str
    text: str
    product: str | None
    language: str
    tags: tuple[str, ...]
    kind: str = "body"  # or "question": a customer phrasing of the article

    @property
    def embedding_text(self) -> str:
        if self.kind == "question":  # short spoken query against short spoken phrasing
            return self.text
        heading = f" {self.heading}." if self.heading and self.heading != self.title else ""
        return f"{self.title}.{heading} {self.text}"

    @property
    def content_hash(self) -> str:
        """Key of the embedding cache: equal text embeds to an equal vector, whatever the article."""
        return hashlib.sha256(self.embedding_text.encode("utf-8")).hexdigest()

    @property
    def vector_id(self) -> int:
        return vector_id(self.id)


def vector_id(chunk_id: str) -> int:
    """FAISS id of a chunk: a pure function of its id, so re-ingesting never renumbers anything."""
    digest = hashlib.blake2b(chunk_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & (2**63 - 1)


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _sections(body: str) -> Iterable[tuple[str, str]]:
    heading = ""
    lines: list[str] = []
    for line in body.splitlines():
        if re.match(r"^#{1,6}\s", line):
            if "".join(lines).strip():
                yield heading, "\n".join(lines).strip()
            heading = line.lstrip("#").strip()
            lines = []
        else:
            lines.append(line)
    if "".join(lines).strip():
        yield heading, "\n".join(lines).strip()


def _pack(paragraphs: list[str], max_chars: int, overlap: int) -> list[str]:
    """Greedy paragraph packing; a new chunk starts with the tail of the previous one."""
    chunks: list[str] = []
    current = ""
    for paragraph in paragraphs:
        while len(paragraph) > max_chars:  # one huge paragraph: split on sentence-ish bounds
            cut = paragraph.rfind(". ", 0, max_chars)
            cut = cut + 1 if cut > max_chars // 2 else max_chars
            paragraphs_head, paragraph = paragraph[:cut].strip(), paragraph[cut:].strip()
            if current:
                chunks.append(current)
                current = ""
            chunks.append(paragraphs_head)
        if current and len(current) + len(paragraph) + 1 > max_chars:
            chunks.append(current)
            tail = current[-overlap:]
            space = tail.find(" ")
            current = (tail[space + 1 :] if space >= 0 else tail) + "\n" + paragraph
        else:
            current = f"{current}\n{paragraph}" if current else paragraph
    if current:
        chunks.append(current)
    return chunks


def chunk_article(
    article: Article, *, max_chars: int = MAX_CHUNK_CHARS, overlap: int = OVERLAP_CHARS
) -> list[Chunk]:
    chunks: list[Chunk] = []
    anchors: dict[str, int] = {}
    for heading, text in _sections(article.body):
        anchor = slugify(heading) if heading else "top"
        anchors[anchor] = anchors.get(anchor, 0) + 1
        if anchors[anchor] > 1:
            anchor = f"{anchor}-{anchors[anchor]}"
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
        for index, piece in enumerate(_pack(paragraphs, max_chars, overlap)):
            chunks.append(
                Chunk(
                    id=f"{article.id}#{anchor}:{index}",
                    article_id=article.id,
                    title=article.title,
                    url=article.url,
                    anchor=anchor,
                    heading=heading or article.title,
                    text=piece,
                    product=article.product,
                    language=article.language,
                    tags=article.tags,
                )
            )
    # Customer phrasings bridge the gap between how articles are written and how callers
    # talk ("my phone got nicked" vs "lost or stolen device"); they point at the top section.
    first_anchor = chunks[0].anchor if chunks else "top"
    for index, question in enumerate(article.questions):
        chunks.append(
            Chunk(
                id=f"{article.id}#questions:{index}",
                article_id=article.id,
                title=article.title,
                url=article.url,
                anchor=first_anchor,
                heading="How customers ask",
                text=question,
                product=article.product,
                language=article.language,
                tags=article.tags,
                kind="question",
            )
        )
    return chunks
