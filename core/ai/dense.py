"""The dense leg of similar tickets: a small static embedding model whose weights ship inside its wheel.

WordLlama 0.4 (`l2_supercat`, MIT; `weights/l2_supercat_256.safetensors`, 16 MB, in the `wordllama` wheel
from the package index) turns a ticket into a 256-d unit vector by averaging token embeddings: no network,
no GPU, ~0.1 ms per query and thousands of tickets per second on one core here (bench/ai_dense.py).
Chosen over MiniLM int8 ONNX (0.806 P@1 in reference/ai.md §3, but ~11 docs/s and a 42 ms p50 query on this
machine: the query alone would spend the 50 ms budget) and model2vec (no package ships potion weights).

`load()` returns None when the package is absent or its files do not load: similar tickets then run on the
lexical leg alone (core/ai/similar.py), and `status()` says why. Nothing is ever downloaded: WordLlama looks
for its tokenizer in `tokenizer/` while the wheel has `tokenizers/`, so it is pointed at the package folder
with downloads disabled (reference/ai.md §4).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from core.ai.text import normalise

log = logging.getLogger(__name__)

MODEL = "wordllama 0.4 l2_supercat 256-d"
# The mean cosine between two unrelated tickets under this model: 0.1368 over 20,000 random pairs of the
# IT-service training side (bench/ai_dense.py, validation split). A dense cosine is read relative to it, so
# that "no relation" scores about 0 on both legs and one floor serves the hybrid score.
CHANCE_COSINE = 0.137
_CACHE = 256  # recent query embeddings kept (a card refresh asks the same ticket again)


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class WordLlamaEmbedder:
    """Unit-length float32 embeddings of normalised ticket text, with the last queries cached."""

    def __init__(self, model: Any, dim: int) -> None:
        self._model = model
        self.name = MODEL
        self.dim = dim
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.asarray(self._model.embed([normalise(t) or t for t in texts], norm=True), dtype=np.float32)
        return np.ascontiguousarray(out.reshape(len(texts), self.dim))

    def query(self, text: str) -> np.ndarray:
        """One query's vector; the last `_CACHE` queries are answered from memory."""
        hit = self._cache.get(text)
        if hit is not None:
            self._cache.move_to_end(text)
            return hit
        vec = self.embed([text])[0]
        self._cache[text] = vec
        if len(self._cache) > _CACHE:
            self._cache.popitem(last=False)
        return vec


_loaded: WordLlamaEmbedder | None = None
_why_not: str | None = None


def load() -> WordLlamaEmbedder | None:
    """The process's embedder (loaded once, ~0.1 s), or None when the model package is missing."""
    global _loaded, _why_not
    if _loaded is not None or _why_not is not None:
        return _loaded
    try:
        with _root_logging_kept():
            import wordllama
            from wordllama import WordLlama

            model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
        _loaded = WordLlamaEmbedder(model, int(model.embedding.shape[1]))
    except Exception as exc:  # ImportError, or files missing from a broken install: degrade, never fail
        _why_not = f"{type(exc).__name__}: {exc}"
        log.warning("similar tickets: dense model unavailable (%s); using the lexical leg only. "
                    "Install it with `pip install 'deskbridge[ai]'`.", _why_not)
    return _loaded


@contextmanager
def _root_logging_kept() -> Iterator[None]:
    """wordllama calls `logging.basicConfig(level=INFO)` when imported: in a process that has not configured
    logging yet (a CLI command, a script), that would install an unredacted INFO handler on the root logger for
    the rest of the process. Put the root logger back as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)


def status() -> str:
    """A line for model status: which dense model runs, or why similar tickets are lexical only."""
    if load() is not None:
        return f"hybrid (lexical + {MODEL})"
    return f"lexical only: dense model unavailable ({_why_not})"
