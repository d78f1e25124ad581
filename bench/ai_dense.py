"""Similar tickets, hybrid retrieval: choose on validation, report test once, time it over 100k tickets.

    .venv/bin/python bench/ai_dense.py          # writes bench/results/ai_dense.json (~30 min at load 12)
    .venv/bin/python bench/ai_dense.py --speed  # re-measures and replaces its speed section only

Data: the IT-service set (bench/_ai_data.py checks it), the same stratified 80/20 split (seed 42) as
bench/ai_eval.py. Relevant = a neighbour of the query's class (a proxy: the set has no relevance judgments).

1. Validation, training side only. The training 80% is split again (stratified 10%, seed 42): the index holds
   the other 90%, queries are drawn from the 10%. Swept there: the lexical weighting (word 1 or 1-2 grams, raw
   or sublinear tf, on core/ai/text.normalise text), the share of the lexical score in the hybrid
   (0.0 = dense alone ... 1.0 = lexical alone), WordLlama truncated to 64/128/256 dimensions, and reciprocal
   rank fusion for reference. Chosen: the best P@1 (P@5 breaks ties). The product's constants
   (core/ai/similar.py) must equal the choice: the file says whether they do.
2. Test, once: the index holds the training 80%, 2,000 test queries. Baselines in this run on the same queries:
   plain TF-IDF cosine (sklearn defaults, raw text, brute force), the lexical leg that shipped before
   (1-2 grams, sublinear tf), chance.
   Near-duplicates, in both phases: a query is dropped when the plain baseline or any swept lexical weighting
   finds an indexed ticket at cosine >= 0.9 (a rule made by one retriever alone would keep the queries that
   retriever finds hardest).
3. Speed over 100,000 tickets (training tickets repeated under new ids over 50 customers): build docs/s,
   incremental add of 1,000, query p50/p99 and CPU per query for the hybrid and the lexical leg, all
   customers and one customer; same-run baselines: a brute-force sparse TF-IDF product over the same
   tickets, and the trivial floor of any dense search (one 100k x 256 float32 product on one BLAS thread +
   argpartition); and that product on the default BLAS threads (2 here), as session 7's dense leg ran it.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import sys
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._ai_data import SPLIT_TICKETS, TICKETS, chance_same_class, load_now, machine, need, verified  # noqa: E402
from core.ai import dense, similar  # noqa: E402
from core.ai.similar import Doc, SimilarIndex  # noqa: E402
from core.ai.text import normalise  # noqa: E402

OUT = ROOT / "bench" / "results" / "ai_dense.json"
SEED, N_QUERIES, NEAR_DUP, RRF_K = 42, 2_000, 0.9, 60
WEIGHTINGS = {"1gram_raw": ((1, 1), False), "1gram_sublinear": ((1, 1), True),
              "1-2gram_raw": ((1, 2), False), "1-2gram_sublinear": ((1, 2), True)}  # the last one shipped before
SHARES = [round(x, 1) for x in np.arange(0.0, 1.01, 0.1)]
DIMS = (64, 128, 256)
INDEX_SIZE, LATENCY_QUERIES = 100_000, 500


def load() -> tuple[list[str], list[str]]:
    need(TICKETS)
    with gzip.open(TICKETS, "rt", newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    return [r[0] for r in rows], [r[1] for r in rows]


class Plain:
    """The baseline: sklearn's TfidfVectorizer with its defaults on the raw text, brute-force cosine."""

    def __init__(self, docs: list[str]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vec = TfidfVectorizer(dtype=np.float32)
        self.x = self.vec.fit_transform(docs).T.tocsr()

    def scores(self, text: str) -> np.ndarray:
        return (self.vec.transform([text]) @ self.x).toarray().ravel()


def top(scores: np.ndarray, k: int = 5) -> np.ndarray:
    t = np.argpartition(-scores, k)[:k]
    return t[np.argsort(-scores[t], kind="stable")]


def p_at(rels: list[list[bool]], k: int) -> float:
    return round(float(np.mean([sum(r[:k]) / k for r in rels])), 4) if rels else 0.0


def chance_cosines(vectors: np.ndarray, rng: np.random.Generator, pairs: int = 20_000) -> dict[int, float]:
    a, b = rng.integers(0, len(vectors), pairs), rng.integers(0, len(vectors), pairs)
    out = {}
    for d in DIMS:
        v = vectors[:, :d] / np.linalg.norm(vectors[:, :d], axis=1, keepdims=True)
        out[d] = round(float(np.mean(np.sum(v[a] * v[b], axis=1))), 4)
    return out


def validation(texts: list[str], labels: list[str], tr: np.ndarray, embedder: dense.WordLlamaEmbedder) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.model_selection import train_test_split

    fit, val = train_test_split(tr, test_size=0.1, stratify=[labels[i] for i in tr], random_state=SEED)
    rng = np.random.default_rng(SEED)
    fit_labels = np.array([labels[i] for i in fit])
    norm = [normalise(texts[i]) for i in fit]
    lex = {}
    for name, (ngrams, sub) in WEIGHTINGS.items():
        vec = TfidfVectorizer(ngram_range=ngrams, sublinear_tf=sub, dtype=np.float32)
        lex[name] = (vec, vec.fit_transform(norm).tocsc())
    plain = Plain([texts[i] for i in fit])
    full = embedder.embed([texts[i] for i in fit])
    chance = chance_cosines(full, rng)
    dense_by_dim = {d: full[:, :d] / np.linalg.norm(full[:, :d], axis=1, keepdims=True) for d in DIMS}
    rel: dict[str, list[list[bool]]] = {}
    top1: dict[str, list[tuple[float, bool]]] = {}
    dropped = used = 0

    def record(name: str, scores: np.ndarray, relevant: np.ndarray) -> None:
        t = top(scores)
        rel.setdefault(name, []).append(relevant[t].tolist())
        top1.setdefault(name, []).append((float(scores[t[0]]), bool(relevant[t[0]])))

    for q in rng.permutation(val):
        qn = normalise(texts[q])
        lex_scores = {}
        for name, (vec, m) in lex.items():
            qv = vec.transform([qn])
            lex_scores[name] = np.asarray(m[:, qv.indices] @ qv.data).ravel()
        base = plain.scores(texts[q])
        if max(float(base.max()), *(float(s.max()) for s in lex_scores.values())) >= NEAR_DUP:
            dropped += 1
            continue
        relevant = fit_labels == labels[q]
        record("plain_tfidf_baseline", base, relevant)
        qd = embedder.embed([texts[q]])[0]
        cos = {}
        for d in DIMS:
            v = qd[:d] / np.linalg.norm(qd[:d])
            cos[d] = (dense_by_dim[d] @ v - chance[d]) / (1 - chance[d])
            record(f"dense_{d}", cos[d], relevant)
        for name, ls in lex_scores.items():
            for share in SHARES[1:-1]:
                record(f"hybrid_{name}_{share}", share * ls + (1 - share) * cos[256], relevant)
            record(f"lexical_{name}", ls, relevant)
            rrf = np.zeros(len(ls), dtype=np.float32)
            for s in (ls, cos[256]):
                t = top(s, 50)
                rrf[t] += 1.0 / (RRF_K + 1 + np.arange(50))
            record(f"rrf_{name}", rrf, relevant)
        used += 1
        if used == N_QUERIES:
            break

    table = {name: {"p_at_1": p_at(r, 1), "p_at_5": p_at(r, 5)} for name, r in rel.items()}
    best_lex = max(WEIGHTINGS, key=lambda n: (table[f"lexical_{n}"]["p_at_1"], table[f"lexical_{n}"]["p_at_5"]))
    hybrids = {s: table[f"hybrid_{best_lex}_{s}"] for s in SHARES[1:-1]}
    best_share = max(hybrids, key=lambda s: (hybrids[s]["p_at_1"], hybrids[s]["p_at_5"]))
    beats = table[f"hybrid_{best_lex}_{best_share}"]["p_at_1"] > table["plain_tfidf_baseline"]["p_at_1"]
    return {
        "split": "the training 80% split again, stratified 10% (seed 42): index = the other 90% "
                 f"({len(fit)} tickets), queries drawn from the 10% ({len(val)} tickets); the test 20% is not read",
        "queries": used, "near_duplicates_removed": dropped,
        "chance_cosine_by_dim": chance,
        "chance_p_at_k": chance_same_class(list(fit_labels), [labels[q] for q in val][:used]),
        "results": table,
        "chosen": {"lexical_weighting": best_lex, "ngrams": list(WEIGHTINGS[best_lex][0]),
                   "sublinear_tf": WEIGHTINGS[best_lex][1], "lexical_share": best_share,
                   "hybrid_beats_plain_tfidf_on_validation": beats},
        "floor": floor_check(top1, best_lex, best_share),
    }


def floor_check(top1: dict, best_lex: str, share: float) -> dict:
    """At the default floor, how many queries get an answer and how often its top hit is the same class."""
    out: dict = {}
    for name in (f"lexical_{best_lex}", f"hybrid_{best_lex}_{share}", "lexical_1-2gram_sublinear", "dense_256"):
        shown = [ok for s, ok in top1[name] if s >= similar.DEFAULT_FLOOR]
        out[name] = {"floor": similar.DEFAULT_FLOOR, "answered": round(len(shown) / len(top1[name]), 4),
                     "top1_precision_when_answered": round(float(np.mean(shown)), 4) if shown else None}
    old = out["lexical_1-2gram_sublinear"]["answered"]  # what the floor let through before
    ranked = sorted(top1[f"hybrid_{best_lex}_{share}"], key=lambda t: -t[0])[:max(1, round(old * len(top1[name])))]
    out["hybrid_at_the_old_answer_rate"] = {
        "answered": old, "floor_that_gives_it": round(ranked[-1][0], 4),
        "top1_precision_when_answered": round(float(np.mean([ok for _, ok in ranked])), 4)}
    return out


def test(texts: list[str], labels: list[str], tr: np.ndarray, te: np.ndarray) -> dict:
    rng = np.random.default_rng(SEED)
    docs = [Doc(int(i), None, texts[i]) for i in tr]
    label_of = {int(i): labels[i] for i in tr}
    indexes = {"hybrid (what ships)": SimilarIndex(),
               "lexical leg alone": SimilarIndex(embedder=None),
               "dense leg alone": SimilarIndex(lexical_share=0.0),
               "lexical as shipped before (1-2 grams, sublinear tf)": SimilarIndex(embedder=None, ngrams=(1, 2),
                                                                                  sublinear_tf=True)}
    extra_lexical = {n: SimilarIndex(embedder=None, ngrams=g, sublinear_tf=s).build(docs)
                     for n, (g, s) in WEIGHTINGS.items()}
    for index in indexes.values():
        index.build(docs)
    plain = Plain([texts[i] for i in tr])
    plain_labels = np.array([labels[i] for i in tr])
    rel: dict[str, list[list[bool]]] = {n: [] for n in [*indexes, "plain_tfidf_baseline"]}
    dropped, used = 0, []
    for q in rng.permutation(te):
        base = plain.scores(texts[q])
        lex_best = [ix.search(texts[q], customers=None, k=1, floor=0.0) for ix in extra_lexical.values()]
        if float(base.max()) >= NEAR_DUP or any(h and h[0].score >= NEAR_DUP for h in lex_best):
            dropped += 1
            continue
        rel["plain_tfidf_baseline"].append((plain_labels[top(base)] == labels[q]).tolist())
        for name, index in indexes.items():
            hits = index.search(texts[q], customers=None, k=5, floor=-1.0)
            rel[name].append([label_of[h.doc.ticket_id] == labels[q] for h in hits])
        used.append(labels[q])
        if len(used) == N_QUERIES:
            break
    return {
        "split": {**SPLIT_TICKETS, "index": f"the training 80% ({len(tr)} tickets)",
                  "queries": f"{len(used)} test tickets drawn with seed {SEED}, after dropping near-duplicates"},
        "queries": len(used), "near_duplicates_removed": dropped,
        "results": {n: {"p_at_1": p_at(r, 1), "p_at_5": p_at(r, 5)} for n, r in rel.items()},
        "baseline_chance_p_at_k": chance_same_class([labels[i] for i in tr], used),
        "reference_not_this_run": {"source": "reference/ai.md §3, 2,000 queries without near-duplicate removal",
                                   "tfidf_cosine_p_at_1": 0.722, "minilm_p_at_1": 0.806},
    }


def timed(fn, queries: list[str]) -> dict:
    wall, cpu = [], []
    for q in queries:
        t, c = time.perf_counter(), time.process_time()
        fn(q)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"p50_ms": round(float(np.percentile(wall, 50)) * 1000, 2),
            "p99_ms": round(float(np.percentile(wall, 99)) * 1000, 2),
            "cpu_ms_mean": round(float(np.mean(cpu)) * 1000, 3)}


def speed(texts: list[str], tr: np.ndarray, te: np.ndarray) -> dict:
    rng = np.random.default_rng(SEED)
    base = [texts[i] for i in tr]
    docs = [Doc(n, n % 50, base[n % len(base)]) for n in range(INDEX_SIZE)]
    qs = [texts[i] for i in rng.choice(te, size=LATENCY_QUERIES, replace=False)]
    out: dict = {"indexed": INDEX_SIZE, "padding": "training tickets repeated under new ids over 50 customers",
                 "queries": LATENCY_QUERIES, "load_avg_1m_at_start": load_now()}
    for name, make in (("hybrid", SimilarIndex), ("lexical", lambda: SimilarIndex(embedder=None))):
        t, c = time.perf_counter(), time.process_time()
        index = make().build(docs)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        index.search(qs[0], customers=None)  # stack the blocks
        out[f"{name}_build"] = {"seconds": round(wall, 2), "docs_per_s": round(INDEX_SIZE / wall),
                                "cpu_docs_per_s": round(INDEX_SIZE / cpu)}
        for scope, customers in (("all_customers", None), ("one_customer", {7})):
            out[f"{name}_{scope}"] = timed(lambda q, c=customers, ix=index: ix.search(q, customers=c, k=3), qs)
        if name == "hybrid":
            out["hybrid_all_customers_same_query_again"] = timed(
                lambda q, ix=index: ix.search(q, customers=None, k=3), qs)  # embeddings cached
            add = [Doc(INDEX_SIZE + n, n % 50, base[n]) for n in range(1_000)]
            t = time.perf_counter()
            index.add(add)
            out["hybrid_incremental_add_1000_seconds"] = round(time.perf_counter() - t, 3)
        del index
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(dtype=np.float32)
    x = vec.fit_transform([d.text for d in docs]).T.tocsr()
    out["baseline_bruteforce_tfidf"] = timed(lambda q: top((vec.transform([q]) @ x).toarray().ravel(), 3), qs)
    m = np.random.default_rng(0).standard_normal((INDEX_SIZE, 256), dtype=np.float32)
    v = m[0].copy()
    out["baseline_trivial_dense_matvec"] = timed(lambda q: top(similar._one_thread_matvec(m, v), 3), qs)
    out["dense_matvec_on_default_blas_threads_as_session7"] = timed(lambda q: top(m @ v, 3), qs)
    for name in ("baseline_bruteforce_tfidf", "baseline_trivial_dense_matvec"):
        out[f"ratio_hybrid_p99_to_{name}"] = round(out["hybrid_all_customers"]["p99_ms"] / out[name]["p99_ms"], 2)
        out[f"ratio_hybrid_cpu_to_{name}"] = round(out["hybrid_all_customers"]["cpu_ms_mean"]
                                                   / max(out[name]["cpu_ms_mean"], 1e-6), 2)
    out["load_avg_1m_at_end"] = load_now()
    return out


def speed_only() -> None:
    """`--speed`: re-measure the speed section alone and replace it in the results file (the quality sections
    are deterministic and take most of the run)."""
    from sklearn.model_selection import train_test_split

    texts, labels = load()
    tr, te = train_test_split(np.arange(len(texts)), test_size=0.2, stratify=labels, random_state=SEED)
    result = json.loads(OUT.read_text())
    if "speed" in result:
        result.setdefault("earlier_speed_runs", []).append(result["speed"])
    result["speed"] = {"run": "python bench/ai_dense.py --speed, after the sections above",
                       **speed(texts, tr, te)}
    print(json.dumps(result["speed"], indent=1), flush=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")


def main() -> None:
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_info

    if sys.argv[1:] == ["--speed"]:
        speed_only()
        return
    embedder = dense.load()
    if embedder is None:
        raise SystemExit(f"similar tickets: {dense.status()}; install with `pip install -e '.[ai]'`")
    data = verified(TICKETS)
    texts, labels = load()
    started = machine()
    tr, te = train_test_split(np.arange(len(texts)), test_size=0.2, stratify=labels, random_state=SEED)
    result: dict = {"what": "similar tickets: hybrid (lexical + WordLlama) chosen on validation, test once, speed",
                    "data": data, "model": dense.MODEL, "machine": started,
                    "blas": [{k: i.get(k) for k in ("internal_api", "num_threads", "architecture")}
                             for i in threadpool_info()],
                    "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}}
    t0 = time.perf_counter()
    result["validation"] = validation(texts, labels, tr, embedder)
    chosen = result["validation"]["chosen"]
    result["product_constants"] = {"ngrams": list(similar.NGRAMS), "sublinear_tf": similar.SUBLINEAR_TF,
                                   "lexical_share": similar.LEXICAL_SHARE,
                                   "chance_cosine": dense.CHANCE_COSINE}
    result["product_matches_validation_choice"] = (
        chosen["ngrams"] == list(similar.NGRAMS) and chosen["sublinear_tf"] == similar.SUBLINEAR_TF
        and chosen["lexical_share"] == similar.LEXICAL_SHARE)
    print(json.dumps(result["validation"], indent=1), flush=True)
    result["test"] = test(texts, labels, tr, te)
    print(json.dumps(result["test"], indent=1), flush=True)
    result["speed"] = speed(texts, tr, te)
    print(json.dumps(result["speed"], indent=1), flush=True)
    result["total_seconds"] = round(time.perf_counter() - t0, 1)
    result["machine"]["load_avg_1m_at_end"] = load_now()
    OUT.write_text(json.dumps(result, indent=2, default=lambda o: o.item() if isinstance(o, np.generic) else str(o))
                   + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
