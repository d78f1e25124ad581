"""Summarise py-spy samples (`--format raw --threads`, from bench/e2e_latency.py --spy-psa) of the server process.

    .venv/bin/python bench/_e2e_spy.py SAMPLES [--top 40]

Prints samples per thread, then, for the product's own functions (bot/, core/, store/, connectors/), inclusive
samples (the stacks a function is on, counted once per stack) and "owner" samples (the outermost product function
of each stack: which task the CPU went to). cProfile cannot say this for async code (each resumption of a
coroutine is a call of its own, and SQLAlchemy's greenlets break its call graph); samples can.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

OURS = re.compile(r"\((?:.*/)?(?:wt-[\w-]+/|main/)?((?:bot|core|store|connectors)/[\w/]+\.py):\d+\)")


def summarise(path: Path, top: int) -> str:
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    owner: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        frames = stack.split(";")
        thread = frames[0]
        threads[re.sub(r"0x[0-9a-f]+", "", thread)] += count
        total += count
        ours = []
        for f in frames[1:]:
            m = OURS.search(f)
            if m:
                ours.append(f"{f.split(' (')[0]} ({m.group(1)})")
        for name in dict.fromkeys(ours):
            inclusive[name] += count
        owner[ours[0] if ours else "(no product frame: " + (frames[1].split(" (")[0] if len(frames) > 1 else "?")
              + ")"] += count
    out = [f"samples: {total}"]
    out += [f"  {n:6d} {100 * n / total:5.1f}%  {t}" for t, n in threads.most_common(8)]
    out.append("owner (outermost product function on the stack):")
    out += [f"  {n:6d} {100 * n / total:5.1f}%  {k}" for k, n in owner.most_common(top)]
    out.append("inclusive:")
    out += [f"  {n:6d} {100 * n / total:5.1f}%  {k}" for k, n in inclusive.most_common(top)]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("samples", type=Path)
    ap.add_argument("--top", type=int, default=40)
    args = ap.parse_args()
    print(summarise(args.samples, args.top))


if __name__ == "__main__":
    main()
