"""content_hash is fast and still the very value stored hashes were made with (asdict), or every ticket would
look changed after an upgrade and have its history read again."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import PsaTicket, Ref
from core.sync.apply import content_hash


def reference_hash(t: PsaTicket) -> str:
    data = asdict(t)
    for key in ("category", "subcategory", "custom_fields"):  # left out while empty (apply._NEW_KEYS)
        if not data.get(key):
            data.pop(key, None)
    blob = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


text = st.text(max_size=30)
refs = st.none() | st.builds(Ref, id=st.text(min_size=1, max_size=10), name=st.none() | text)
stamps = st.none() | st.datetimes(timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(st.builds(PsaTicket, external_id=st.text(min_size=1, max_size=10), summary=text, description=text,
                 company=refs, contact=refs, board=refs, status=refs, status_closed=st.none() | st.booleans(),
                 priority=refs, type=refs, owner=refs, source=st.none() | text, created_at=stamps,
                 updated_at=stamps, closed_at=stamps, respond_by=stamps, resolve_by=stamps, responded_at=stamps,
                 marker=st.none() | text, alert_ref=st.none() | text, device_ref=st.none() | text,
                 category=refs, subcategory=refs, custom_fields=st.dictionaries(text, text, max_size=3)))
def test_content_hash_equals_the_asdict_hash(ticket: PsaTicket) -> None:
    assert content_hash(ticket) == reference_hash(ticket)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Richer(PsaTicket):
    extra: tuple[Ref, ...] = ()


def test_a_connector_subclass_takes_the_asdict_path() -> None:
    t = _Richer(external_id="1", summary="s", extra=(Ref("7", "x"),),
                updated_at=datetime(2025, 1, 6, tzinfo=UTC))
    assert content_hash(t) == reference_hash(t)
    assert content_hash(t) != content_hash(PsaTicket(external_id="1", summary="s",
                                                     updated_at=datetime(2025, 1, 6, tzinfo=UTC)))
