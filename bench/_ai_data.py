"""What every AI figure in bench/results carries (reference/ai.md §8): the data it was measured on, checked
(bytes, SHA-256 of the decompressed file, rows: not an LFS pointer, not a truncated copy), the split, and the
machine with its load average. Shared by bench/ai_eval.py and bench/ai_dense.py; data is never committed.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets"
TICKETS = DATA / "it-service-tickets" / "it_service_tickets.csv.gz"
INCIDENTS = DATA / "incident-event-log" / "incident_events_train.csv.gz"

# From ../shared/datasets/README.md (the decompressed CSV's SHA-256 and data rows).
KNOWN = {
    TICKETS.name: {"sha256": "044fdace33fa564e1e60453f2941dafc95539c99878b0d32746950394b9dd4d4", "rows": 47_837,
                   "name": "IT Service Ticket Classification (Kaggle adisongoh; copy Lunalykaya/"
                           "IT-Service-Ticket-Classification@8603bdc)",
                   "licence": "CC0 as stated by the source", "real": True,
                   "caveat": "Topic_group's origin is undocumented (maybe topic modelling): accuracy is optimistic "
                             "against technician-assigned categories (reference/ai.md §2.1)"},
    INCIDENTS.name: {"sha256": "b6d7e11d2b8d256a548438538269f1d31acaf58217478db2e641d10e4427b3f4",
                     "rows": 90_268,
                     "name": "UCI 498 Incident management process enriched event log, earlier 60% of incidents "
                             "by opened_at (the later 40% is kept apart and not read)",
                     "licence": "CC BY 4.0; Amaral, Fantinato, Peres", "real": True,
                     "caveat": "ServiceNow codes only, no text; base rates shift over time"},
}

SPLIT_TICKETS = {
    "kind": "stratified 80/20 by Topic_group, fixed seed 42 (sklearn train_test_split)",
    "train": "80% (38,269 tickets): what models are fitted on and what the similar-ticket index holds",
    "test": "20% (9,568 tickets): categorisation is scored on all of it; retrieval queries are drawn from it",
    "shared_with": "bench/ai_eval.py and bench/ai_dense.py use the same split",
}


def need(path: Path) -> None:
    if not path.exists():
        raise SystemExit(f"{path} is missing: this benchmark reads the shared datasets "
                         "(../shared/datasets relative to the repository); see its README.")


def verified(path: Path) -> dict[str, object]:
    """The file's identity as measured now, refused when it is not the documented file (reference/ai.md §8.2)."""
    need(path)
    raw = gzip.decompress(path.read_bytes())
    sha = hashlib.sha256(raw).hexdigest()
    rows = raw.count(b"\n") - 1  # header line; no field of either file spans lines (checked by the README's author)
    known = KNOWN[path.name]
    if sha != known["sha256"] or rows != known["rows"]:
        raise SystemExit(f"{path.name}: sha256 {sha} / {rows} rows, expected {known['sha256']} / {known['rows']}: "
                         "not the documented file (truncated or replaced); no figures written.")
    return {"file": f"shared/datasets/{path.parent.name}/{path.name}", "bytes_gz": path.stat().st_size,
            "bytes": len(raw), "sha256": sha, "rows": rows, "verified_against": "shared/datasets/README.md",
            **{k: known[k] for k in ("name", "licence", "real", "caveat")}}


def machine() -> dict[str, object]:
    return {"python": platform.python_version(), "cpus": os.cpu_count(),
            "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
            "note": "shared, busy machine: compare figures within one run, not across runs"}


def load_now() -> float:
    return round(os.getloadavg()[0], 2)


def chance_same_class(train_labels: list[str], query_labels: list[str]) -> float:
    """Expected P@k of a retriever that returns random training tickets: for each query, the share of the
    training set in its class (P@1 and P@5 alike)."""
    share: dict[str, float] = {}
    for label in train_labels:
        share[label] = share.get(label, 0) + 1 / len(train_labels)
    return round(sum(share.get(q, 0.0) for q in query_labels) / len(query_labels), 4)
