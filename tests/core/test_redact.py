"""Error text that is stored and shown never carries a credential."""

from __future__ import annotations

from core.outbox.audit import Outcome
from core.outbox.recorder import AttemptResult
from core.redact import redact_text


def test_redact_text_masks_every_kind_of_secret():
    text = ("failed: Authorization: Basic YWNtZStwdWI6cHJpdmF0ZQ== token=xoxb-123-456-abc "
            "api_key=k3y dbk_ab12cd_SuperSecretValue private_key: hunter2 Secret=s3c")
    out = redact_text(text)
    for secret in ("YWNtZStwdWI6cHJpdmF0ZQ", "xoxb-123", "k3y", "SuperSecretValue", "hunter2", "s3c"):
        assert secret not in out
    assert out.startswith("failed:")
    assert redact_text("x" * 50, limit=10).startswith("x" * 10 + "…")


def test_attempt_results_are_redacted_before_they_are_stored():
    res = AttemptResult(Outcome.DEAD, "add_note", error="HTTP 401 for Authorization: Bearer abcdefghijklmnop",
                        connection_error="Credentials rejected: password=letmein")
    assert "abcdefghijklmnop" not in (res.error or "")
    assert "letmein" not in (res.connection_error or "")
    assert "HTTP 401" in (res.error or "")


async def test_sync_run_errors_are_stored_redacted(db, workspace_id):
    from sqlmodel import select

    from core.sync import runs
    from store.db import Scope
    from store.tables import SyncRun
    from store.types import utcnow
    from tests.factories import psa_backed

    setup = await psa_backed(db, workspace_id)
    run_id = await runs.start_run(db, workspace_id, setup.connection_id, "incremental", utcnow())
    await runs.finish_run(db, workspace_id, run_id, status="failed", now=utcnow(), counts={},
                          error="HTTPStatusError: 401 for Authorization: Basic YWNtZTpwcml2YXRl")
    async with db.read(Scope.workspace(workspace_id)) as s:
        row = (await s.exec(select(SyncRun))).one()
    assert "YWNtZTpwcml2YXRl" not in (row.error or "") and row.error.startswith("HTTPStatusError: 401")
