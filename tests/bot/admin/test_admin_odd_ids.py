"""Admin pages given an id no row can have (larger than the database's integers, as a hand-edited URL or a
scanner sends): a page saying there is no such record, never a 500."""

from __future__ import annotations

import pytest

from tests.bot.admin.helpers import sign_in
from tests.bot.api.conftest import Api

HUGE = ["99999999999999999999", "9223372036854775808", "2147483648"]


@pytest.mark.parametrize("huge", HUGE)
async def test_a_page_or_form_with_an_id_too_large_for_any_row_is_a_404_page(api: Api, huge: str):
    csrf = await sign_in(api)
    gets = [f"/admin/dead-letters/{huge}", f"/admin/connections/{huge}"]
    posts = [f"/admin/dead-letters/{huge}/redrive", f"/admin/dead-letters/{huge}/discard",
             f"/admin/connections/{huge}/check", f"/admin/bindings/{huge}/delete", f"/admin/intake/rules/{huge}/delete"]
    for path in gets:
        r = await api.client.get(path)
        assert r.status_code == 404, (path, r.status_code, r.text[:200])
        assert _says_none(r.text) and "Back to the overview" in r.text, path
    for path in posts:
        r = await api.client.post(path, data={"csrf": csrf, "reason": "x"})
        assert r.status_code == 404, (path, r.status_code, r.text[:200])
        assert _says_none(r.text), path


def _says_none(html: str) -> bool:
    return "no such" in html.lower() or "not found" in html.lower()
