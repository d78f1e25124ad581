"""Contract tests of the documentation clients (Hudu, IT Glue) against their loopback fakes: real HTTP on
127.0.0.1, paging, PSA ids first, 429 + Retry-After, a refused key; one suite run against both."""

from __future__ import annotations

import pytest

from connectors.docs import DocsAuthError, DocsQuery, DocsThrottled
from connectors.hudu import HuduDocs
from connectors.itglue import ItGlueDocs
from tests.fakes.docs_platforms import FakeHudu, FakeItGlue, seed_hudu, seed_itglue


@pytest.fixture(params=["hudu", "itglue"])
async def platform(request):
    fake = await (FakeHudu() if request.param == "hudu" else FakeItGlue()).start()
    (seed_hudu if request.param == "hudu" else seed_itglue)(fake)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    cls = HuduDocs if request.param == "hudu" else ItGlueDocs
    client = cls(fake.url, fake.api_key, sleep=sleep)
    yield request.param, fake, client, waits
    await client.aclose()
    await fake.stop()


async def test_links_for_customer_and_device_by_psa_id(platform) -> None:
    kind, fake, client, _ = platform
    links = await client.links(DocsQuery(customer_name="Acme Corporation (renamed)", customer_psa_id="250",
                                         device_name="ACME-LT-1", device_psa_id="78"))
    kinds = [x.kind for x in links]
    assert kinds[0] == "company" and "Acme Corp" in links[0].title and links[0].url.startswith(fake.url)
    assert "asset" in kinds and "ACME-LT-1" in next(x.title for x in links if x.kind == "asset")
    assert 1 <= len([k for k in kinds if k in ("runbook", "article")]) <= 3
    assert all(x.url.startswith(fake.url + "/") for x in links)
    assert not any("password" in path for path, _ in fake.requests)  # passwords are linked, never read


async def test_name_fallback_walks_every_page(platform) -> None:
    kind, fake, client, _ = platform
    links = await client.links(DocsQuery(customer_name="Acme Corp"))  # no PSA id: found by name
    assert links and links[0].kind == "company"
    unknown = await client.links(DocsQuery(customer_name="Nobody Ltd", customer_psa_id="999"))
    assert unknown == ()


async def test_paging(platform) -> None:
    kind, fake, client, _ = platform
    if kind == "hudu":
        rows = await client._all("/companies", "companies", {})
        pages = [q.get("page") for p, q in fake.requests if p == "/api/v1/companies"]
        assert len(rows) == 30 and pages == ["1", "2"]  # 25, then 5: a short page is the last
    else:
        rows = await client._all("/organizations", {}, limit=1000)
        assert len(rows) == 120 and [q.get("page[number]") for p, q in fake.requests] == [None, "2", "3"]


async def test_throttling_honours_retry_after_then_gives_up(platform) -> None:
    kind, fake, client, waits = platform
    fake.throttle(2, "3")
    assert await client.links(DocsQuery(customer_name="Acme Corp", customer_psa_id="250"))
    assert waits == [3.0, 3.0]
    fake.throttle(10, "1")
    with pytest.raises(DocsThrottled) as e:
        await client.check()
    assert e.value.retry_after == 1.0


async def test_refused_key_says_so_without_the_key(platform) -> None:
    kind, fake, client, _ = platform
    bad = (HuduDocs if kind == "hudu" else ItGlueDocs)(fake.url, "wrong-key-abc")
    with pytest.raises(DocsAuthError) as e:
        await bad.check()
    await bad.aclose()
    assert "wrong-key-abc" not in str(e.value) and "401" in str(e.value)
