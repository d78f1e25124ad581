"""App Home freshness of bench/e2e_latency.py: technicians with their Home open, and when a PSA edit shows there.

Four technicians (members added to the fake ConnectWise by bench/_cw_proc.py) open their App Home through the
real path: a signed `app_home_opened` event POSTed to /slack/events over loopback (bolt links them by e-mail and
publishes their queue). Reassignments in the PSA cycle among them, so each owns ~a quarter of the carded
tickets (their queue fits on the Home's first page of 20).

Freshness of one edit on Home = edit in the PSA -> the first views.publish to the technician concerned whose
row of that ticket shows it: a reassignment to them (the row appears), a status change of a ticket they own
(the row shows the new status). An edit the ticket's next edit of the same field (or a reassignment away)
overtook before any publish showed it is counted as `superseded` (its Home showed the newer state), not as
a latency. Slack's budget: views.publish is tier 4 (~100/min per workspace); Deskbridge spends at most 90/min
on refreshes (bot/slack/home.py), so with N Homes open and all changing, each is re-published every
N * 60 / 90 s at best.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bench._e2e_chat import Signer
from bench._e2e_setup import TEAM, Rig
from bench._http import Conn

# member identifier (bench/_cw_proc.py HOME_TECHS) -> (Slack user, the name a card or row shows)
HOME_TECHS = {"cara": ("U_E2E_CARA", "Cara Tech"), "dan": ("U_E2E_DAN", "Dan Tech"),
              "eve": ("U_E2E_EVE", "Eve Tech"), "finn": ("U_E2E_FINN", "Finn Tech")}
HOME_PER_MINUTE = 90.0  # bot/slack/home.py HOME_PUBLISHES_PER_MINUTE (of tier 4's ~100/min)


async def open_homes(rig: Rig) -> None:
    """Each technician opens their App Home (signed event over loopback); wait for every first publish."""
    signer = Signer()
    conn = Conn("127.0.0.1", rig.port)
    try:
        for ident, (user, _) in HOME_TECHS.items():
            rig.slack.fake.add_user(user, email=f"{ident}@msp.example", name=f"{ident.title()} Tech")
            signer.n += 1
            event = {"type": "app_home_opened", "user": user, "tab": "home", "channel": f"D_{user}",
                     "event_ts": f"{time.time():.6f}"}
            body = json.dumps({"token": "x", "team_id": TEAM, "api_app_id": "A0001", "type": "event_callback",
                               "event_id": f"EvHome{signer.n}", "event_time": int(time.time()), "event": event,
                               "authorizations": [{"team_id": TEAM, "user_id": "UBOT", "is_bot": True}]})
            status, _ = await conn.send(signer.raw(body, "application/json"))
            if status != 200:
                raise SystemExit(f"app_home_opened for {user} answered {status}")
    finally:
        await conn.close()
    deadline = time.monotonic() + 60
    users = {u for u, _ in HOME_TECHS.values()}
    while time.monotonic() < deadline:
        got = {str(c.args.get("user_id")) for c in rig.slack.fake.calls if c.method == "views.publish"}
        if users <= got:
            return
        await asyncio.sleep(0.1)
    raise SystemExit("not every technician's App Home was published on opening")


def home_row(kind: str, token: str, value: str, owner: str | None) -> dict[str, Any] | None:
    """What an edit should look like on whose Home (None: nobody with Home open is concerned)."""
    if kind == "assign" and value in HOME_TECHS:
        return {"user": HOME_TECHS[value][0], "needles": [token]}
    if kind == "status" and owner in HOME_TECHS:
        return {"user": HOME_TECHS[owner][0], "needles": [token, value]}
    return None


def _rows_of(view: dict[str, Any]) -> list[str]:
    return [json.dumps(b) for b in view.get("blocks") or [] if b.get("type") == "section"]


def home_freshness(rows: list[dict[str, Any]], calls: list[Any], start: float) -> dict[str, Any]:
    """Per edit with a Home concerned: when the Home first showed it (see the module docstring)."""
    by_user: dict[str, list[tuple[float, list[str]]]] = {}
    for c in calls:
        if c.method == "views.publish" and c.at >= start:
            by_user.setdefault(str(c.args.get("user_id")), []).append((c.at, _rows_of(c.args.get("view") or {})))
    lat: dict[str, list[float]] = {"status": [], "assign": []}
    superseded = unseen = 0
    for i, row in enumerate(rows):
        home = row.get("home")
        if home is None:
            continue
        token = home["needles"][0]
        nxt = next((r["at"] for r in rows[i + 1:] if r.get("id") == row["id"]
                    and r["kind"] in ("assign", row["kind"])), None)
        seen = None
        for at, sections in by_user.get(home["user"], []):
            if at < row["at"]:
                continue
            if nxt is not None and at >= nxt:
                break
            if any(token in s and all(n in s for n in home["needles"]) for s in sections):
                seen = at
                break
        if seen is not None:
            lat[row["kind"]].append(seen - row["at"])
        elif nxt is not None:
            superseded += 1
        else:
            unseen += 1
    publishes = sum(len(v) for v in by_user.values())
    return {"lat": lat, "superseded": superseded, "not_seen": unseen, "views_publish": publishes}
