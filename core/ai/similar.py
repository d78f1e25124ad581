"""Similar past tickets: a lexical (TF-IDF cosine) index, filtered by customer before scoring.

Pure logic over documents handed in; the service decides which documents exist and who may see which
customers. `search(..., customers=...)` takes its candidates from the rows of the allowed customers only,
before any ranking, so a ticket of another customer can never be returned. `customers=None` means every
customer and is for technicians in workspaces that allow it.

No dense model: a MiniLM int8 ONNX embedding runs at ~75 docs/s on 2 cores here (reference/ai.md §3), too
slow to index an MSP's history inside a request budget on this machine; the lexical leg is what ships.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from core.ai.text import normalise

DEFAULT_FLOOR = 0.25  # cosine below this is not "similar" (nothing is a valid answer)


@dataclass(frozen=True, slots=True)
class Doc:
    """One closed ticket as the index holds it."""

    ticket_id: int
    customer_id: int | None
    text: str  # subject + description (raw; normalised on the way in)
    number: int | None = None
    closed_at: datetime | None = None
    resolution: str = ""  # the resolution note, verbatim
    resolved_by: str | None = None
    connection_id: int | None = None  # where the ticket lives in the PSA (for its link)
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    doc: Doc
    score: float


class SimilarIndex:
    """TF-IDF (word 1-2 grams, sublinear tf, l2) over closed tickets; grows with `add`."""

    def __init__(self) -> None:
        self._vec: Any = None
        self._blocks: list[Any] = []  # sparse row blocks, stacked lazily
        self._matrix: Any = None
        self.docs: list[Doc] = []
        self._by_customer: dict[int | None, list[int]] = {}
        self._rows_cache: dict[frozenset[int | None], np.ndarray] = {}
        self._ids: set[int] = set()

    def __len__(self) -> int:
        return len(self.docs)

    def build(self, docs: Sequence[Doc]) -> SimilarIndex:
        """(Re)build from scratch: fit the vocabulary on `docs` and index them."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.__init__()  # type: ignore[misc]
        self._vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, dtype=np.float32)
        if docs:
            self._vec.fit([normalise(d.text) for d in docs])
        self._append(docs)
        return self

    def add(self, docs: Sequence[Doc]) -> int:
        """Index more closed tickets; tickets already indexed are skipped. The vocabulary is kept unless a
        new ticket is mostly words it has never seen (then everything is re-indexed with a new one, so a
        new kind of problem is findable at once). Returns how many were added."""
        new = [d for d in docs if d.ticket_id not in self._ids]
        if not new:
            return 0
        if self._vec is None or not hasattr(self._vec, "vocabulary_") or self._mostly_unseen(new):
            self.build([*self.docs, *new])
            return len(new)
        return self._append(new)

    def _mostly_unseen(self, docs: Sequence[Doc]) -> bool:
        vocab = self._vec.vocabulary_
        for d in docs:
            words = set(normalise(d.text).split())
            if words and sum(w in vocab for w in words) * 2 < len(words):
                return True
        return False

    def _append(self, docs: Sequence[Doc]) -> int:
        if not docs or self._vec is None or not hasattr(self._vec, "vocabulary_"):
            return 0
        base = len(self.docs)
        self._blocks.append(self._vec.transform([normalise(d.text) for d in docs]))
        self._matrix = None
        for i, d in enumerate(docs):
            self.docs.append(d)
            self._ids.add(d.ticket_id)
            self._by_customer.setdefault(d.customer_id, []).append(base + i)
        self._rows_cache.clear()
        return len(docs)

    def _stacked(self) -> Any:
        """The index as one column-major matrix: a query reads only the columns of its own terms."""
        if self._matrix is None:
            import scipy.sparse as sp

            self._matrix = sp.vstack(self._blocks, format="csc") if self._blocks else None
            self._blocks = [self._matrix] if self._matrix is not None else []
        return self._matrix

    def _rows(self, customers: Collection[int | None]) -> np.ndarray:
        key = frozenset(customers)
        rows = self._rows_cache.get(key)
        if rows is None:
            parts = [self._by_customer.get(c, []) for c in key]
            rows = np.sort(np.fromiter((r for p in parts for r in p), dtype=np.int64))
            self._rows_cache[key] = rows
        return rows

    def search(self, text: str, *, customers: Collection[int | None] | None, k: int = 3,
               floor: float = DEFAULT_FLOOR, exclude: Collection[int] = ()) -> list[Hit]:
        """The k closest indexed tickets of the allowed `customers` (None: all) scoring at least `floor`."""
        matrix = self._stacked()
        if matrix is None or not text.strip():
            return []
        q = self._vec.transform([normalise(text)])
        if q.nnz == 0:
            return []
        rows = None if customers is None else self._rows(customers)
        if rows is not None and rows.size == 0:
            return []
        scores = np.asarray(matrix[:, q.indices] @ q.data).ravel()
        if rows is not None:
            scores = scores[rows]  # only the allowed customers' tickets are candidates from here on
        want = min(k + len(exclude), scores.size)
        top = np.argpartition(-scores, want - 1)[:want] if want < scores.size else np.arange(scores.size)
        top = top[np.argsort(-scores[top], kind="stable")]
        hits: list[Hit] = []
        for j in top:
            s = float(scores[j])
            if s < floor:
                break
            doc = self.docs[int(rows[j]) if rows is not None else int(j)]
            if doc.ticket_id in exclude:
                continue
            hits.append(Hit(doc, s))
            if len(hits) == k:
                break
        return hits
