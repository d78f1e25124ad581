"""The hybrid similar-ticket index with the packaged dense model: scope first, the floor, incremental
embedding, the query cache, and a clean fall-back to the lexical leg when the model package is absent."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from core.ai import dense
from core.ai.similar import Doc, SimilarIndex

pytest.importorskip("wordllama")  # a project dependency (deskbridge[ai]); the fall-back is tested below

TICKETS = [
    Doc(1, 10, "Outlook keeps asking for my password after the mailbox migration"),
    Doc(2, 20, "Outlook keeps asking for my password after the mailbox migration"),
    Doc(3, 10, "Printer on floor 2 jams on every print job"),
    Doc(4, 10, "Laptop screen flickers when docked"),
    Doc(5, 10, "New starter needs an account and a laptop on Monday"),
]


class Counting:
    """The real embedder, counting the texts it embeds."""

    def __init__(self) -> None:
        real = dense.load()
        assert real is not None
        self.real, self.name, self.dim, self.embedded = real, real.name, real.dim, 0

    def embed(self, texts):
        self.embedded += len(texts)
        return self.real.embed(texts)

    def query(self, text):
        return self.real.query(text)


def test_the_model_loads_from_the_wheel_and_embeds_unit_vectors():
    model = dense.load()
    assert model is not None and model.dim == 256
    v = model.embed(["vpn drops every hour", "printer jam"])
    assert v.shape == (2, 256) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert dense.status().startswith("hybrid")


def test_the_hybrid_keeps_customer_scope_and_ranks_by_meaning_too():
    index = SimilarIndex().build(TICKETS)
    assert index.mode.startswith("hybrid")
    hits = index.search("outlook prompts for credentials again and again", customers={10}, k=3)
    assert hits and hits[0].doc.ticket_id == 1
    assert all(h.doc.customer_id == 10 for h in hits)
    assert 2 not in {h.doc.ticket_id for h in index.search("outlook password mailbox", customers={10}, k=5,
                                                           floor=-1.0)}
    assert index.search("outlook password", customers={99}) == []


def test_the_floor_hides_weak_matches_and_scores_are_comparable_to_the_lexical_ones():
    index = SimilarIndex().build(TICKETS)
    assert index.search("quarterly invoice for the accounts team", customers=None) == []
    best = index.search("outlook keeps asking for my password after the mailbox migration", customers=None)
    assert best and best[0].score > 0.9  # the same words: near 1 on both legs


def test_closing_tickets_embeds_only_the_new_ones_even_when_the_vocabulary_is_refitted():
    counting = Counting()
    index = SimilarIndex(embedder=counting).build(TICKETS[:3])
    assert counting.embedded == 3
    assert index.add(TICKETS) == 2 and counting.embedded == 5
    assert index.add(TICKETS) == 0 and counting.embedded == 5
    assert index.add([Doc(6, 10, "Fire alarm panel reports a zone fault")]) == 1  # unseen words: new vocabulary
    assert counting.embedded == 6
    assert index.search("alarm panel zone fault", customers={10})[0].doc.ticket_id == 6


def test_a_query_embedding_is_cached():
    model = dense.load()
    assert model is not None
    first = model.query("scanner does not send to email")
    assert model.query("scanner does not send to email") is first


def test_without_the_model_package_similar_tickets_fall_back_to_the_lexical_leg(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "wordllama", None)  # import fails as if not installed
    monkeypatch.setattr(dense, "_loaded", None)
    monkeypatch.setattr(dense, "_why_not", None)
    index = SimilarIndex().build(TICKETS)
    assert index.mode == "lexical"
    assert "lexical only" in dense.status() and "deskbridge[ai]" in caplog.text
    hits = index.search("outlook password mailbox migration", customers={10}, k=3)
    assert [h.doc.ticket_id for h in hits][:1] == [1]
    lexical = SimilarIndex(embedder=None).build(TICKETS)
    assert [(h.doc.ticket_id, h.score) for h in hits] == [
        (h.doc.ticket_id, h.score) for h in lexical.search("outlook password mailbox migration", customers={10})]


def test_a_search_leaves_the_process_blas_threads_as_they_were():
    from threadpoolctl import threadpool_info

    before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    index = SimilarIndex().build(TICKETS)
    assert index.search("outlook password", customers=None)
    assert [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"] == before


def test_loading_the_dense_model_leaves_the_root_logger_as_it_was() -> None:
    """wordllama runs `logging.basicConfig(level=INFO)` on import; in a process without logging configured (a
    CLI command, a script) that would leave an unredacted INFO handler on the root logger. A fresh interpreter,
    since the import happens once per process."""
    import subprocess
    import sys

    code = ("import logging\nfrom core.ai import dense\nassert dense.load() is not None, dense.status()\n"
            "root = logging.getLogger()\nprint(len(root.handlers), root.level)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[3]))
    assert out.stdout.split() == ["0", str(30)]  # no handler added, WARNING (the default) kept
