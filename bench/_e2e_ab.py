"""A/B of bench/e2e_latency.py --chat-only: another ref's product code against this tree's, same bench and fakes.

`shim(dir)`: a directory whose top-level packages are `dir`'s (bot, core, store, connectors, ...) except bench and
tests, which are this tree's; put first on sys.path (spawned children inherit it). `ab(ref, rounds, argv, out)`:
`git archive ref` into a temporary directory (no worktree, nothing in the repository changes), then runs the
bench `rounds` times per side, alternating which side goes first, each in its own process, and writes every run
and the ratios of the two sides' medians (branch / baseline) with the load average of each run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OURS = ("bench", "tests")


def shim(code: str) -> str:
    src = Path(code).resolve()
    out = Path(tempfile.mkdtemp(prefix="e2e_shim_"))
    for entry in src.iterdir():
        if entry.name not in OURS and not entry.name.startswith("."):
            (out / entry.name).symlink_to(entry)
    for name in OURS:
        (out / name).symlink_to(ROOT / name)
    return str(out)


def _figures(r: dict[str, Any]) -> dict[str, Any]:
    c = r["chat_to_psa"]
    return {"load_before": r["load_average_1m_before"], "load_after": r["load_average_1m_after"],
            "write_p50_s": c["write"]["p50_s"], "write_p99_s": c["write"]["p99_s"],
            "confirmed_p50_s": c["confirmed_after_write"]["p50_s"],
            "confirmed_p99_s": c["confirmed_after_write"]["p99_s"], "confirmed_by": c["confirmed_by"],
            "not_confirmed": c["writes_not_confirmed"], "card_update_p50_s": c["card_after_write"]["p50_s"],
            "card_update_p99_s": c["card_after_write"]["p99_s"], "cpu_ms_per_action": c["cpu_ms_per_action"],
            "chat_update_per_action": c["chat_update_per_action"], "healthz_p99_s": c["baseline_healthz"]["p99_s"],
            "writes_not_seen": c["writes_not_seen"]}


def _one(argv: list[str], code: str | None, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(ROOT / "bench" / "e2e_latency.py"), *argv, "--out", str(out)]
    if code is not None and code.startswith("--"):  # the baseline is this code with a switch (--no-writes-first)
        cmd.append(code)
    elif code is not None:
        cmd += ["--code", code]
    subprocess.run(cmd, check=True, cwd=ROOT)
    return json.loads(out.read_text())


def ab(ref: str, rounds: int, argv: list[str], result: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="e2e_ab_"))
    base: Path | str = tmp / "base"
    if ref.startswith("--"):  # same code, the baseline with this switch
        base, commit = ref, "this tree with " + ref
    else:
        Path(base).mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", ref], check=True, capture_output=True,
                                text=True).stdout.strip()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "branch": []}
    for i in range(rounds):
        order = ("baseline", "branch") if i % 2 == 0 else ("branch", "baseline")
        for side in order:
            got = _one(argv, str(base) if side == "baseline" else None, tmp / f"{side}{i}.json")
            runs[side].append(_figures(got))
            print(f"{side} {i}: {runs[side][-1]}", flush=True)

    def median(side: str, key: str) -> float | None:
        vals = [r[key] for r in runs[side] if r[key] is not None]
        return round(statistics.median(vals), 3) if vals else None

    keys = ("write_p50_s", "write_p99_s", "confirmed_p50_s", "confirmed_p99_s", "card_update_p99_s",
            "cpu_ms_per_action", "chat_update_per_action", "healthz_p99_s")
    medians = {side: {k: median(side, k) for k in keys} for side in runs}
    ratios = {k: round(b / a, 2) if (a := medians["baseline"][k]) and (b := medians["branch"][k]) is not None else None
              for k in keys}
    doc = {"benchmark": "e2e_latency chat -> PSA A/B", "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
           "cpu_count": os.cpu_count(), "baseline": {"ref": ref, "commit": commit}, "branch": {"commit": head},
           "argv": argv, "rounds": rounds, "runs": runs, "medians": medians, "ratio_branch_over_baseline": ratios,
           "targets": {"write_p99_s": 2.0, "confirmed_after_write_p99_s": 1.0}}
    result.write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({"medians": medians, "ratios": ratios}, indent=2))
