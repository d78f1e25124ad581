"""Does a small dense embedding leg help similar tickets on this machine? An experiment, not shipped code.

Same data, split and query protocol as bench/ai_eval.py (IT Service set, stratified 80/20 seed 42; 2,000
test queries, each dropped when its top lexical neighbour has cosine >= 0.9; relevant = same class). Three
retrievers over the training 80%, measured in this run:

- lexical: core/ai/similar.py SimilarIndex (what ships; the baseline);
- dense: WordLlama 0.4 (`l2_supercat`, 256-d, weights inside its wheel, loaded with downloads disabled),
  cosine over all training tickets;
- hybrid: reciprocal-rank fusion (k=60) of the lexical and dense top 50.

Also each leg's indexing throughput (docs/s) and per-query latency (p50/p99). MiniLM int8 ONNX is not
re-measured: reference/ai.md §3 gives ~75 docs/s on 2 cores (about 22 minutes for 100k tickets).
Needs `pip install wordllama==0.4.0.post1` (not a project dependency). Writes bench/results/ai_dense.json.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._ai_data import SPLIT_TICKETS, TICKETS, chance_same_class, load_now, machine, need, verified  # noqa: E402
from core.ai.similar import Doc, SimilarIndex  # noqa: E402
from core.ai.text import normalise  # noqa: E402

OUT = ROOT / "bench" / "results" / "ai_dense.json"
SEED, N_QUERIES, NEAR_DUP, POOL, RRF_K = 42, 2_000, 0.9, 50, 60


def load() -> tuple[list[str], list[str]]:
    import csv
    import gzip

    need(TICKETS)
    with gzip.open(TICKETS, "rt", newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    return [r[0] for r in rows], [r[1] for r in rows]


def main() -> None:
    import wordllama
    from sklearn.model_selection import train_test_split
    from wordllama import WordLlama

    data = verified(TICKETS)
    texts, labels = load()
    started = machine()
    idx = np.arange(len(texts))
    tr, te = train_test_split(idx, test_size=0.2, stratify=labels, random_state=SEED)
    rng = np.random.default_rng(SEED)
    train_labels = np.array([labels[i] for i in tr])

    t0 = time.perf_counter()
    lexical = SimilarIndex().build([Doc(int(i), None, texts[i]) for i in tr])
    lex_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    wl = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    dense = np.asarray(wl.embed([normalise(texts[i]) for i in tr], norm=True), dtype=np.float32)
    dense_build = time.perf_counter() - t0
    pos = {int(t): n for n, t in enumerate(tr)}

    queries = rng.choice(te, size=min(N_QUERIES * 2, len(te)), replace=False)
    used: list[str] = []
    rel: dict[str, list[list[bool]]] = {"lexical": [], "dense": [], "hybrid": []}
    lat: dict[str, list[float]] = {"lexical": [], "dense": []}
    dropped = 0
    for q in queries:
        t0 = time.perf_counter()
        hits = lexical.search(texts[q], customers=None, k=POOL, floor=0.0)
        lat["lexical"].append(time.perf_counter() - t0)
        if not hits or hits[0].score >= NEAR_DUP:
            dropped += bool(hits)
            continue
        t0 = time.perf_counter()
        v = np.asarray(wl.embed([normalise(texts[q])], norm=True), dtype=np.float32)[0]
        scores = dense @ v
        top = np.argpartition(-scores, POOL)[:POOL]
        top = top[np.argsort(-scores[top])]
        lat["dense"].append(time.perf_counter() - t0)
        lex_rows = [pos[h.doc.ticket_id] for h in hits]
        fused: dict[int, float] = {}
        for rank, row in enumerate(lex_rows):
            fused[row] = fused.get(row, 0.0) + 1 / (RRF_K + rank + 1)
        for rank, row in enumerate(top.tolist()):
            fused[row] = fused.get(row, 0.0) + 1 / (RRF_K + rank + 1)
        hybrid = sorted(fused, key=lambda r: -fused[r])[:5]
        for name, rows in (("lexical", lex_rows[:5]), ("dense", top[:5].tolist()), ("hybrid", hybrid)):
            rel[name].append([bool(train_labels[r] == labels[q]) for r in rows])
        used.append(labels[q])
        if len(rel["lexical"]) == N_QUERIES:
            break

    def p(name: str, k: int) -> float:
        return round(float(np.mean([sum(r[:k]) / k for r in rel[name]])), 4)

    def ms(xs: list[float], q: float) -> float:
        return round(float(np.percentile(xs, q)) * 1000, 2)

    result = {
        "what": "similar tickets: lexical (shipped) vs a WordLlama dense leg vs RRF hybrid, same run",
        "data": data,
        "split": {**SPLIT_TICKETS, "index": f"the training 80% ({len(tr)} tickets)",
                  "queries": "test tickets drawn with seed 42, near-duplicates of the index dropped"},
        "baseline": "lexical (what ships) and chance (random training tickets), on the same queries in this run",
        "baseline_chance_p_at_k": chance_same_class(list(train_labels), used),
        "queries": len(rel["lexical"]), "near_duplicates_removed": dropped, "relevance": "same Topic_group (proxy)",
        "p_at_1": {k: p(k, 1) for k in rel}, "p_at_5": {k: p(k, 5) for k in rel},
        "index_docs_per_s": {"lexical": round(len(tr) / lex_build), "dense_wordllama": round(len(tr) / dense_build)},
        "wordllama_load_seconds": round(load_s, 2),
        "query_ms": {k: {"p50": ms(v, 50), "p99": ms(v, 99)} for k, v in lat.items()},
        "index_size": len(tr),
        "machine": {**started, "load_avg_1m_at_end": load_now()},
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
