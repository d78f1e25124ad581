"""Knowledge-article linking: which KB article (and which paragraph of it) answers a ticket, if any.

Pure logic over articles handed in (core/ai/knowledge.py reads them from the database). Articles are chunked
by heading (a long section is cut at about `CHUNK_WORDS` words) and indexed with the same lexical retrieval as
similar tickets (TF-IDF word 1-2 grams, sublinear tf, cosine). A query gets at most `k` articles, each once
(its best chunk), each with the paragraph of that chunk that matches the ticket best; nothing scores below
`threshold`, so "no link" is a valid answer.

Scope comes first, as for similar tickets: the candidates are the workspace's general articles (no customer)
and the articles of the allowed customers, chosen before any ranking.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import numpy as np

from core.ai.text import normalise

CHUNK_WORDS = 300
DEFAULT_THRESHOLD = 0.30  # cosine below this: no link (tuned on the fixture in bench/ai_kb.py; see its notes)
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True, slots=True)
class Article:
    """One KB article as the index holds it: `body` is Markdown-like text (headings as `#` lines)."""

    article_id: int
    source: str  # hudu | markdown | ...
    title: str
    body: str
    url: str | None = None
    customer_id: int | None = None  # None: a general article every technician's ticket may link


@dataclass(frozen=True, slots=True)
class Chunk:
    article: Article
    heading: str  # "" for the text before the first heading
    paragraphs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class KbLink:
    article: Article
    score: float
    heading: str
    paragraph: str  # the chunk's paragraph closest to the ticket, verbatim


class _Text(HTMLParser):
    """HTML to paragraphs: block elements end a paragraph, h1-h6 become `#` lines, scripts and styles drop."""

    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "pre", "blockquote", "ul", "ol", "table", "section"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._cur: list[str] = []
        self._skip = 0
        self._heading = 0

    def _flush(self) -> None:
        text = " ".join("".join(self._cur).split())
        if text:
            self.lines.append(("#" * self._heading + " " if self._heading else "") + text)
        self._cur = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self._flush()
            self._heading = int(tag[1])
        elif tag in self.BLOCKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self._flush()
            self._heading = 0
        elif tag in self.BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._cur.append(data)


def html_to_text(html: str) -> str:
    """Article HTML (Hudu's `content`) as text with one paragraph per line and headings as `#` lines."""
    parser = _Text()
    parser.feed(html or "")
    parser.close()
    parser._flush()
    return "\n\n".join(parser.lines)


def chunk(article: Article, *, words: int = CHUNK_WORDS) -> list[Chunk]:
    """The article cut at its headings; a section longer than `words` is cut between paragraphs."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    for block in re.split(r"\n\s*\n|\n(?=\s{0,3}#)", article.body or ""):
        lines = [ln.strip() for ln in block.strip().splitlines() if ln.strip()]
        if not lines:
            continue
        m = _HEADING.match(lines[0])
        if m:
            sections.append((m.group(2), []))
            lines = lines[1:]
        if lines:
            sections[-1][1].append(" ".join(lines))
    out: list[Chunk] = []
    for heading, paragraphs in sections:
        part: list[str] = []
        count = 0
        for p in paragraphs:
            n = len(p.split())
            if part and count + n > words:
                out.append(Chunk(article, heading, tuple(part)))
                part, count = [], 0
            part.append(p)
            count += n
        if part or (heading and not paragraphs):
            out.append(Chunk(article, heading, tuple(part)))
    return out or [Chunk(article, "", ())]


def _chunk_text(c: Chunk) -> str:
    return normalise(" ".join((c.article.title, c.heading, *c.paragraphs)))


class KbIndex:
    """Chunks of a workspace's articles in one TF-IDF matrix; built whole (articles change rarely)."""

    def __init__(self) -> None:
        self._vec: Any = None
        self._matrix: Any = None
        self.chunks: list[Chunk] = []
        self._customers: np.ndarray = np.zeros(0, dtype=np.int64)  # -1: a general article

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def articles(self) -> int:
        return len({c.article.article_id for c in self.chunks})

    def build(self, articles: Sequence[Article]) -> KbIndex:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.__init__()  # type: ignore[misc]
        chunks = [c for a in articles for c in chunk(a)]
        texts = [_chunk_text(c) for c in chunks]
        keep = [i for i, t in enumerate(texts) if t]
        if not keep:
            return self
        self.chunks = [chunks[i] for i in keep]
        self._vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, dtype=np.float32)
        self._matrix = self._vec.fit_transform([texts[i] for i in keep]).tocsc()
        self._customers = np.array([-1 if c.article.customer_id is None else c.article.customer_id
                                    for c in self.chunks], dtype=np.int64)
        return self

    def search(self, text: str, *, customers: Collection[int | None] | None, k: int = 3,
               threshold: float = DEFAULT_THRESHOLD) -> list[KbLink]:
        """The best chunk of up to k articles (general ones, and those of `customers`; None: every
        customer's) scoring at least `threshold`, each with its closest paragraph."""
        if self._matrix is None or not text.strip():
            return []
        q = self._vec.transform([normalise(text)])
        if q.nnz == 0:
            return []
        scores = np.asarray(self._matrix[:, q.indices] @ q.data).ravel()
        if customers is not None:  # out-of-scope chunks can never rank
            allowed = np.isin(self._customers, [-1, *(c for c in customers if c is not None)])
            scores = np.where(allowed, scores, -1.0)
        links: list[KbLink] = []
        seen: set[int] = set()
        for j in np.argsort(-scores, kind="stable"):
            s = float(scores[j])
            if s < threshold:
                break
            c = self.chunks[int(j)]
            if c.article.article_id in seen:
                continue
            seen.add(c.article.article_id)
            links.append(KbLink(c.article, s, c.heading, self._paragraph(c, q)))
            if len(links) == k:
                break
        return links

    def _paragraph(self, c: Chunk, q: Any) -> str:
        if len(c.paragraphs) <= 1:
            return c.paragraphs[0] if c.paragraphs else c.heading
        rows = self._vec.transform([normalise(p) for p in c.paragraphs])
        best = int(np.argmax(np.asarray(rows @ q.T.toarray()).ravel()))
        return c.paragraphs[best]
