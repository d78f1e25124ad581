"""A ConnectWise refusal (400, `{code, message, errors:[{code, message, field}]}`, psa-apis.md 2.10) reaches the
operator's explanation of the dead write with ConnectWise's own words and the step (fix, then retry), and the chat
event with cause `refused`: not "gave up", not a bare status code."""

from __future__ import annotations

from core.notify import WriteDead
from core.outbox.admin import OutboxAdmin
from tests.core.outbox.test_fault_matrix import NOTES, CwRig, cw  # noqa: F401 - fixture


async def test_a_connectwise_refusal_is_explained_in_its_words(cw: CwRig):  # noqa: F811
    cw.cw.fail_next(400, match=NOTES)
    await cw.tickets.comment(cw.tech, cw.cw_ticket, "Swapped the PSU", visibility="internal")
    await cw.run()
    [op] = await cw.ops()
    assert op.status == "dead" and op.attempts == 1 and op.last_status_code == 400
    said = (op.last_error or "").strip()
    assert said, "the PSA's words are kept"
    why = (await OutboxAdmin(cw.db, clock=cw.clock).get_op(cw.tech.workspace_id, op.id)).op.why or ""
    assert why.startswith("The PSA refused this write (HTTP 400): ") and said[:80] in why, why
    assert f"deskbridge outbox retry {op.id}" in why and "Gave up" not in why
    [dead] = cw.notifier.of(WriteDead)
    assert dead.cause == "refused"
