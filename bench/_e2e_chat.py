"""Chat -> PSA of bench/e2e_latency.py: bursts of 20 signed Slack requests (thread replies that become notes,
"Assign to me" clicks) to the write applied in the fake PSA, then to what shows the technician it is in the PSA.

"Confirmed" after the write = the first of: the card's next chat.update; for a click, the card replaced through
the click's response_url (as Slack sends one with every button click, bound in the fake to the card's message);
for a thread reply, a reaction on the technician's message (reactions.add). `card_after_write` keeps the old
figure (chat.update only) beside it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlencode

from bench._e2e_setup import HOST, SECRET, TEAM, USER, Rig
from bench._http import Conn, build_request

BURST = 20
HEALTHZ = build_request("GET", "/healthz", HOST)


class Signer:
    def __init__(self) -> None:
        from slack_sdk.signature import SignatureVerifier

        self.verifier = SignatureVerifier(SECRET)
        self.n = 0

    def raw(self, body: str, content_type: str) -> bytes:
        ts = str(int(time.time()))
        headers = {"X-Slack-Request-Timestamp": ts, "Content-Type": content_type,
                   "X-Slack-Signature": self.verifier.generate_signature(timestamp=ts, body=body)}
        return build_request("POST", "/slack/events", HOST, headers, body.encode())

    def reply(self, thread: dict[str, Any], text: str, ts: str) -> bytes:
        self.n += 1
        event = {"type": "message", "channel": thread["channel"], "user": USER, "text": text,
                 "ts": ts, "thread_ts": thread["thread_ts"], "channel_type": "channel",
                 "team": TEAM}
        body = json.dumps({"token": "x", "team_id": TEAM, "api_app_id": "A0001", "type": "event_callback",
                           "event_id": f"EvE2E{self.n}", "event_time": int(time.time()), "event": event,
                           "authorizations": [{"team_id": TEAM, "user_id": "UBOT", "is_bot": True}]})
        return self.raw(body, "application/json")

    def assign_me(self, thread: dict[str, Any], response_url: str) -> bytes:
        self.n += 1
        payload = {"type": "block_actions", "team": {"id": TEAM}, "user": {"id": USER, "team_id": TEAM},
                   "api_app_id": "A0001", "trigger_id": f"trig.e2e.{self.n}", "response_url": response_url,
                   "container": {"type": "message", "message_ts": thread["card_ts"], "channel_id": thread["channel"]},
                   "channel": {"id": thread["channel"]}, "message": {"ts": thread["card_ts"], "text": "card"},
                   "actions": [{"action_id": "db_assign_me", "block_id": "b", "value": str(thread["number"]),
                                "type": "button", "action_ts": f"{time.time():.6f}"}]}
        return self.raw(urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded")


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))], 3)


def _stats(values: list[float]) -> dict[str, Any]:
    return {"n": len(values), "p50_s": _pct(values, 50), "p95_s": _pct(values, 95), "p99_s": _pct(values, 99),
            "max_s": round(max(values), 3) if values else None}


async def _burst(conns: list[Conn], raws: list[bytes]) -> tuple[float, list[float], list[int]]:
    acks: list[float] = []
    bad: list[int] = []

    async def one(c: Conn, raw: bytes) -> None:
        t = time.perf_counter()
        status, _ = await c.send(raw)
        acks.append(time.perf_counter() - t)
        if status != 200:
            bad.append(status)

    sent = time.monotonic()
    await asyncio.gather(*(one(c, r) for c, r in zip(conns, raws, strict=True)))
    return sent, acks, bad


def _write_of(row: dict[str, Any], writes: list[tuple[float, str, str, str]]) -> float | None:
    tid = row["id"]
    for at, method, path, body in writes:
        if row["kind"] == "note" and method == "POST" and path.endswith(f"/service/tickets/{tid}/notes") \
                and row["text"] in body:
            return at
        if row["kind"] == "assign" and method == "PATCH" and path.endswith(f"/service/tickets/{tid}") \
                and "owner" in body:
            return at
    return None


def _confirmed(rig: Rig, row: dict[str, Any], card_at: float | None) -> tuple[float, str] | None:
    """When (and how) the technician was first shown that the write of `row` is in the PSA."""
    fake = rig.slack.fake
    seen: list[tuple[float, str]] = [] if card_at is None else [(card_at, "chat.update")]
    if row["kind"] == "assign":
        seen += [(float(w["at"]), "response_url") for w in list(fake.webhooks)
                 if w.get("name") == row["response_url"] and w.get("replace_original") in (True, "true")
                 and float(w["at"]) >= row["written"]]
    else:
        seen += [(c.at, "reactions.add") for c in list(fake.calls) if c.method == "reactions.add"
                 and c.args.get("timestamp") == row["ts"] and c.at >= row["written"]]
    return min(seen) if seen else None


async def chat_to_psa(rig: Rig, *, bursts: int, psa_latency_s: float, gap_s: float) -> dict[str, Any]:
    """`bursts` bursts of 20 (half replies, half clicks), the PSA answering writes `psa_latency_s` late."""
    await rig.ask("slow", psa_latency_s)
    signer = Signer()
    conns = [Conn(HOST, rig.port) for _ in range(BURST)]
    targets = list(rig.carded)
    assigned: set[int] = set()
    rows: list[dict[str, Any]] = []
    acks: list[float] = []
    healthz: list[float] = []
    errors: list[int] = []
    for b in range(bursts):
        for c in conns:  # fresh keep-alive sockets, one /healthz each (the baseline round trip)
            await c.close()
        _, h, bad = await _burst(conns, [HEALTHZ] * BURST)
        healthz += h
        errors += bad
        batch: list[dict[str, Any]] = []
        raws: list[bytes] = []
        for i in range(BURST):
            tid = targets[(b * BURST + i) % len(targets)]
            fresh = [t for t in targets if t not in assigned]  # "Assign to me" on a ticket already mine writes nothing
            if i % 2 and fresh:
                tid = fresh[0]
                assigned.add(tid)
            thread = rig.threads[tid]
            if i % 2 and tid in assigned:
                name = f"click-b{b}i{i}"
                url = rig.slack.fake.response_url(name, message=(thread["channel"], thread["card_ts"]))
                batch.append({"kind": "assign", "id": tid, "thread": thread, "response_url": name})
                raws.append(signer.assign_me(thread, url))
            else:
                text = f"tech reply b{b}i{i}x"
                ts = f"{time.time():.6f}{i:02d}"  # unique per message (the reaction names it)
                batch.append({"kind": "note", "id": tid, "thread": thread, "text": text, "ts": ts})
                raws.append(signer.reply(thread, text, ts))
        sent, a, bad = await _burst(conns, raws)
        rig.burst_times.append(sent)
        acks += a
        errors += bad
        for row in batch:
            row["sent"] = sent
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            writes = await rig.ask("writes_since", sent)
            for row in batch:
                if "written" not in row and (at := _write_of(row, writes)) is not None:
                    row["written"] = at
            if all("written" in r for r in batch):
                break
            await asyncio.sleep(0.05)
        rows += batch
        await asyncio.sleep(gap_s)
    await rig.settle(30)
    for c in conns:
        await c.close()
    await rig.ask("slow", 0)
    written = [r for r in rows if "written" in r]
    card: list[float] = []
    confirmed: dict[str, list[float]] = {"note": [], "assign": []}
    how: dict[str, int] = {"chat.update": 0, "response_url": 0, "reactions.add": 0}
    for r in written:
        probe = {"method": "chat.update", "at": r["written"], "needles": [],
                 "match": lambda args, ts=r["thread"]["card_ts"]: args.get("ts") == ts}
        seen = rig.seen_at(probe)
        if seen is not None:
            card.append(seen - r["written"])
        first = _confirmed(rig, r, seen)
        if first is not None:
            confirmed[r["kind"]].append(first[0] - r["written"])
            how[first[1]] += 1
    write = _stats([r["written"] - r["sent"] for r in written])
    after = _stats(card)
    every = confirmed["note"] + confirmed["assign"]
    return {
        "pattern": f"{bursts} bursts of {BURST} requests written at once ({BURST // 2} thread replies -> notes, "
                   f"{BURST // 2} 'Assign to me' clicks), {gap_s:g} s apart; the PSA answers each write "
                   f"{psa_latency_s * 1000:g} ms late",
        "targets": {"write_p99_s": 2.0, "card_after_write_s": 1.0},
        "baseline_healthz": _stats(healthz), "ack": _stats(acks), "write": write,
        "write_by_kind": {k: _stats([r["written"] - r["sent"] for r in written if r["kind"] == k])
                          for k in ("note", "assign")},
        "card_after_write": after, "confirmed_after_write": _stats(every),
        "confirmed_after_write_by_kind": {k: _stats(v) for k, v in confirmed.items()},
        "confirmed_by": how, "writes_not_confirmed": len(written) - len(every),
        "writes_not_seen": len(rows) - len(written),
        "cards_not_updated": len(written) - len(card), "http_errors": errors[:5],
        "ratio_write_p99_vs_healthz_p99": round(write["p99_s"] / _stats(healthz)["p99_s"], 1)
        if write["p99_s"] and healthz else None,
        "meets": {"write": bool(write["p99_s"] is not None and write["p99_s"] < 2.0 and len(written) == len(rows)),
                  "card_after_write": bool(after["p99_s"] is not None and after["p99_s"] < 1.0
                                           and len(card) == len(written)),
                  "confirmed_after_write": bool(_stats(every)["p99_s"] is not None and _stats(every)["p99_s"] < 1.0
                                                and len(every) == len(written))},
    }
