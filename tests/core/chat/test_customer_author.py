"""The author of a reply as a customer reads it (core/chat/visibility.py customer_author)."""

from __future__ import annotations

import pytest

from core.chat import customer_author


@pytest.mark.parametrize(("stored", "shown"), [
    ("Ana Torres", "Ana Torres"),
    ("slack:U_ANN (Ann Lee)", "Ann Lee"),
    ("teams:29:1a2b-c3 (Ann Lee)", "Ann Lee"),
    ("slack:U_ANN", "Someone from your team"),
    ("email:ann@acme.example", "ann@acme.example"),
    ("apikey:portal-sync", "Support"),
    ("system", "Support"),
    ("ai:category", "Support"),
    (None, "Support"),
    ("", "Support"),
])
def test_people_by_name_automation_as_support(stored, shown):
    assert customer_author(stored) == shown
