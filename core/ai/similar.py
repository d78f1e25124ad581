"""Similar past tickets: a hybrid of a lexical (TF-IDF cosine) leg and a dense embedding leg, filtered by
customer before scoring.

Pure logic over documents handed in; the service decides which documents exist and who may see which
customers. `search(..., customers=...)` takes its candidates from the rows of the allowed customers only,
before any ranking, so a ticket of another customer can never be returned. `customers=None` means every
customer and is for technicians in workspaces that allow it.

Score: `LEXICAL_SHARE * lexical cosine + (1 - LEXICAL_SHARE) * dense score`, where the dense score is the
embedding cosine read relative to the model's cosine between unrelated tickets (core/ai/dense.py), so both
legs put "no relation" near 0 and one floor hides weak matches on either. The lexical weighting and the share
were chosen on a validation split carved from the training side of the IT-service set, never on its test
set (bench/ai_dense.py; figures in bench/results/ai_dense.json). Without the model package the index is
lexical only (score = lexical cosine), which is what shipped before.

Cost per query over n tickets: one sparse product over the query's terms' columns, one float32 matrix-vector
product on one BLAS thread (n x 256, unit rows, so no norms to divide by), and an argpartition for the top
k. The query's embedding (~0.1 ms) is cached; the matrix-vector product is most of the time.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from core.ai import dense
from core.ai.text import normalise

DEFAULT_FLOOR = 0.25  # a score below this is not "similar" (nothing is a valid answer)
# Chosen on validation (bench/ai_dense.py, 2,000 queries from a 10% split of the training side): word
# unigrams with sublinear tf had the best lexical P@1 (0.677, vs 0.664 for the 1-2 grams that shipped before
# and 0.676 for plain TF-IDF); with them the best hybrid P@1 was at a lexical share of 0.2 (0.706).
NGRAMS = (1, 1)
SUBLINEAR_TF = True
LEXICAL_SHARE = 0.2
AUTO: Any = object()  # SimilarIndex(embedder=AUTO): the packaged model when installed, else lexical only


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


_blas_lock = threading.Lock()
_blas: list[Any] = []  # the process's ThreadpoolController, made on first use


def _one_thread_matvec(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """`matrix @ vector` on one BLAS thread. The product reads the whole matrix (100 MB at 100k tickets) and is
    memory-bound: a second thread adds no speed, and on a busy machine waiting for it cost 1.8x the CPU and
    4x the p99 (bench/ai_dense.py profile). The limit is process-wide while it lasts, hence the lock."""
    with _blas_lock:
        if not _blas:
            from threadpoolctl import ThreadpoolController

            _blas.append(ThreadpoolController())
        with _blas[0].limit(limits=1, user_api="blas"):
            return matrix @ vector


class SimilarIndex:
    """Closed tickets, searchable by text; grows with `add` as tickets close."""

    def __init__(self, *, embedder: Any = AUTO, ngrams: tuple[int, int] = NGRAMS, sublinear_tf: bool = SUBLINEAR_TF,
                 lexical_share: float = LEXICAL_SHARE) -> None:
        self._embedder = dense.load() if embedder is AUTO else embedder
        self._ngrams, self._sublinear = ngrams, sublinear_tf
        self._share = lexical_share if self._embedder is not None else 1.0
        self._vec: Any = None
        self._blocks: list[Any] = []  # sparse row blocks, stacked lazily
        self._matrix: Any = None
        self._dense_blocks: list[np.ndarray] = []  # unit float32 rows, one per doc, stacked lazily
        self._dense: np.ndarray | None = None
        self.docs: list[Doc] = []
        self._by_customer: dict[int | None, list[int]] = {}
        self._rows_cache: dict[frozenset[int | None], np.ndarray] = {}
        self._ids: set[int] = set()

    def __len__(self) -> int:
        return len(self.docs)

    @property
    def mode(self) -> str:
        return "lexical" if self._embedder is None else f"hybrid ({self._embedder.name})"

    def build(self, docs: Sequence[Doc]) -> SimilarIndex:
        """(Re)build from scratch: fit the vocabulary on `docs` and index them."""
        self.__init__(embedder=self._embedder, ngrams=self._ngrams,  # type: ignore[misc]
                      sublinear_tf=self._sublinear, lexical_share=self._share)
        self._fit(docs)
        self._append(docs)
        return self

    def _fit(self, docs: Sequence[Doc]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self._vec = TfidfVectorizer(ngram_range=self._ngrams, sublinear_tf=self._sublinear, min_df=1,
                                    dtype=np.float32)
        if docs:
            self._vec.fit([normalise(d.text) for d in docs])

    def add(self, docs: Sequence[Doc]) -> int:
        """Index more closed tickets; tickets already indexed are skipped. The vocabulary is kept unless a
        new ticket is mostly words it has never seen (then the lexical leg is re-indexed with a new one, so a
        new kind of problem is findable at once; the dense leg embeds only the new tickets). Returns how many
        were added."""
        new = [d for d in docs if d.ticket_id not in self._ids]
        if not new:
            return 0
        if self._vec is None or not hasattr(self._vec, "vocabulary_") or self._mostly_unseen(new):
            everything = [*self.docs, *new]
            self._fit(everything)
            self._blocks = [self._vec.transform([normalise(d.text) for d in self.docs])] if self.docs else []
            self._matrix = None
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
        if self._embedder is not None:
            self._dense_blocks.append(self._embedder.embed([d.text for d in docs]))
            self._dense = None
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

    def _dense_stacked(self) -> np.ndarray:
        if self._dense is None:
            self._dense = np.ascontiguousarray(np.vstack(self._dense_blocks), dtype=np.float32)
            self._dense_blocks = [self._dense]
        return self._dense

    def _rows(self, customers: Collection[int | None]) -> np.ndarray:
        key = frozenset(customers)
        rows = self._rows_cache.get(key)
        if rows is None:
            parts = [self._by_customer.get(c, []) for c in key]
            rows = np.sort(np.fromiter((r for p in parts for r in p), dtype=np.int64))
            self._rows_cache[key] = rows
        return rows

    def scores(self, text: str, rows: np.ndarray | None) -> np.ndarray | None:
        """Every candidate's score (the allowed `rows` only, in that order; None: all), or None when the
        query has nothing to match on."""
        matrix = self._stacked()
        if matrix is None or not text.strip():
            return None
        q = self._vec.transform([normalise(text)])
        if q.nnz == 0 and self._embedder is None:
            return None
        lexical = np.asarray(matrix[:, q.indices] @ q.data).ravel()
        if rows is not None:
            lexical = lexical[rows]  # only the allowed customers' tickets are candidates from here on
        if self._embedder is None:
            return lexical
        vectors = self._dense_stacked() if rows is None else self._dense_stacked()[rows]
        cosine = _one_thread_matvec(vectors, self._embedder.query(text))
        return self._share * lexical + (1.0 - self._share) * (cosine - dense.CHANCE_COSINE) / (
            1.0 - dense.CHANCE_COSINE)

    def search(self, text: str, *, customers: Collection[int | None] | None, k: int = 3,
               floor: float = DEFAULT_FLOOR, exclude: Collection[int] = ()) -> list[Hit]:
        """The k closest indexed tickets of the allowed `customers` (None: all) scoring at least `floor`."""
        rows = None if customers is None else self._rows(customers)
        if rows is not None and rows.size == 0:
            return []
        scores = self.scores(text, rows)
        if scores is None or scores.size == 0:
            return []
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
