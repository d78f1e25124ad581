"""The list page's rows are written without a pydantic model per row (issue 20 item 5); they must be exactly
what the model (`TicketSummaryOut`, the documented schema) writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.api.portal.models import TicketSummaryOut, summary_json, summary_out
from core.views import Priority, Stage, TicketSummary

WHEN = [datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 12, 7, 13, 5, 9, 4500, tzinfo=UTC),
        datetime(2025, 6, 1, 8, 0, tzinfo=timezone(timedelta(hours=2))), datetime(2025, 3, 1, 9, 30, 0, 1)]


@pytest.mark.parametrize("when", WHEN)
@pytest.mark.parametrize("priority,stage", [(Priority.CRITICAL, Stage.NEW), (Priority.LOW, Stage.WAITING)])
def test_summary_json_is_what_the_model_writes(when: datetime, priority: Priority, stage: Stage):
    for s in (TicketSummary(id=17, number=1042, subject="Printer «2nd floor» jams", customer_id=12,
                            customer_name="Acme", priority=priority, stage=stage, status_name="Waiting Parts",
                            assignee_id=7, assignee_name="Ana Tech", created_at=when, updated_at=when + timedelta(1),
                            psa_name="cw-1042"),
              TicketSummary(id=18, number=None, subject="", customer_id=None, customer_name=None, priority=priority,
                            stage=stage, status_name=stage.label, assignee_id=None, assignee_name=None,
                            created_at=when, updated_at=when)):
        fast = summary_json(s)
        assert fast == summary_out(s)
        assert list(fast) == list(TicketSummaryOut.model_fields)  # same keys, same order
