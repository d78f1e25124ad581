"""Numbers people type and requests carry: '²' is a digit to str.isdigit() but not to int(), and 20 digits overflow
the database. Each place is a refusal with a next step (or a plain 4xx), never a 500."""

from __future__ import annotations

import pytest

from core.chat import grammar
from core.errors import InvalidInput
from core.intake.rules import check_setting
from core.numbers import whole
from tests.bot.admin.helpers import sign_in
from tests.bot.api.conftest import Api

ODD = ["²", "①", "99999999999999999999", "2147483648"]


def test_whole_numbers():
    assert whole("42") == 42 and whole(" 7 ") == 7 and whole("2147483647") == 2**31 - 1
    assert [whole(v) for v in ODD + ["", "-1", "1e3", "٣", None]] == [None] * 9
    assert whole("10001", max_value=10_000) is None and whole("10000", max_value=10_000) == 10_000


@pytest.mark.parametrize("value", ["²", "①"])
def test_chat_outbox_ids_and_intake_settings_refuse_odd_digits(value: str):
    with pytest.raises(InvalidInput) as e:
        grammar.parse("deskbridge", f"outbox redrive {value}")
    assert e.value.hint
    with pytest.raises(InvalidInput) as e:
        check_setting("storm_threshold", value)
    assert e.value.hint


@pytest.mark.parametrize("value", ODD)
async def test_admin_page_links_with_odd_numbers_are_refused_not_500(api: Api, value: str):
    await sign_in(api)
    for path in (f"/admin/audit?cursor={value}", f"/admin/audit?ticket={value}", f"/admin/bindings?after={value}",
                 f"/admin/dead-letters?ticket={value}", f"/admin/dead-letters?connection={value}",
                 f"/admin/intake?rules={value}"):
        r = await api.client.get(path)
        assert r.status_code in (200, 400, 404, 422), (path, r.status_code, r.text[:300])


async def test_a_declared_length_in_odd_digits_is_not_a_500(api: Api):
    for path in ("/webhooks/alerts/nokey", "/webhooks/1/connectwise"):
        r = await api.client.post(path, content=b"{}", headers={"content-length": b"\xb2",
                                                                 "content-type": "application/json"})
        assert r.status_code < 500, (path, r.status_code, r.text[:300])
