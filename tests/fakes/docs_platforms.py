"""Loopback fakes of Hudu and IT Glue (aiohttp on 127.0.0.1, an ephemeral port), as the reference describes them.

Hudu: `x-api-key` (401 otherwise), `/api/v1/companies?id_in_integration=|name=`, `/api/v1/assets?company_id=&name=`,
`/api/v1/procedures?company_id=`, `/api/v1/articles[?company_id=]` (the KB: general articles have no company),
`/api/v1/asset_passwords` (403 for a key without password access); lists of
exactly 25 per `page` with no next link; records carry `url`.
IT Glue: `x-api-key`, JSON:API `{"data": [...], "links": {"next": ...}, "meta": {...}}` with `page[size]` (at most
1,000) and `page[number]`, `filter[psa_id]`/`filter[name]`/`filter[organization_id]`; records carry
`attributes.resource-url`. An organization's documents (`/organizations/{id}/relationships/documents`) are the
root folder's only unless `filter[document_folder_id]` is `null` (every folder) or a folder id, as IT Glue
answers; documents carry `document-folder-id`, `archived`, `published`, `restricted`, `updated-at`.
`/documents/{id}/relationships/sections` lists a document's sections (`resource-type` Document::Text |
Document::Heading (`level`) | Document::Step | Document::Gallery, `content` HTML, `sort`), 404 for an unknown
document.
Both: `throttle(n, retry_after)` answers 429 with Retry-After n times; `requests` records (path, query) per call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes import loopback


@dataclass
class _Loopback:
    api_key: str = "docs-key-0123456789"
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    _throttle: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    port: int = 0

    def throttle(self, times: int, retry_after: str = "1") -> None:
        self._throttle.extend([retry_after] * times)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Any:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._entry)
        self._runner, self.port = await loopback.serve(app)
        return self

    async def stop(self) -> None:
        await loopback.stop(self._runner)
        self._runner = None

    async def _entry(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        self.requests.append((request.path, query))
        if request.headers.get("x-api-key") != self.api_key:
            return web.json_response({"error": "Unauthorized"}, status=401)
        if self._throttle:
            return web.json_response({"error": "Too many requests"}, status=429,
                                     headers={"Retry-After": self._throttle.pop(0)})
        return self.route(request.path, query)

    def route(self, path: str, query: dict[str, str]) -> web.StreamResponse:  # pragma: no cover - overridden
        raise NotImplementedError


@dataclass
class FakeHudu(_Loopback):
    companies: list[dict] = field(default_factory=list)
    assets: list[dict] = field(default_factory=list)
    procedures: list[dict] = field(default_factory=list)
    articles: list[dict] = field(default_factory=list)  # {"id", "name", "content" (HTML), "company_id", "url", "draft"}
    password_access: bool = False

    def route(self, path: str, query: dict[str, str]) -> web.StreamResponse:
        page = int(query.get("page", "1"))
        if path == "/api/v1/companies":
            rows = [c for c in self.companies
                    if ("id_in_integration" not in query or c.get("id_in_integration") == query["id_in_integration"])
                    and ("name" not in query or c["name"] == query["name"])]
            return self._page("companies", rows, page)
        if path == "/api/v1/assets":
            rows = [a for a in self.assets if str(a["company_id"]) == query.get("company_id", str(a["company_id"]))
                    and ("name" not in query or a["name"] == query["name"])]
            return self._page("assets", rows, page)
        if path == "/api/v1/procedures":
            rows = [p for p in self.procedures if str(p["company_id"]) == query.get("company_id")]
            return self._page("procedures", rows, page)
        if path == "/api/v1/articles":
            rows = [a for a in self.articles if "company_id" not in query or str(a["company_id"]) == query["company_id"]]
            return self._page("articles", rows, page)
        if path == "/api/v1/asset_passwords":
            if not self.password_access:
                return web.json_response({"error": "This API key does not have password access"}, status=403)
            return self._page("asset_passwords", [], page)
        return web.json_response({"error": "Not found"}, status=404)

    @staticmethod
    def _page(key: str, rows: list[dict], page: int) -> web.StreamResponse:
        return web.json_response({key: rows[(page - 1) * 25: page * 25]})


def seed_hudu(h: FakeHudu, *, psa_id: str = "250", companies: int = 30) -> None:
    """Many companies (more than a page); Acme Corp is linked to the PSA company `psa_id`."""
    base = h.url
    h.companies += [{"id": i, "name": f"Company {i:02d}", "id_in_integration": None, "url": f"{base}/c/company-{i}"}
                    for i in range(1, companies)]
    h.companies.append({"id": 99, "name": "Acme Corp", "id_in_integration": psa_id, "url": f"{base}/c/acme-corp"})
    h.assets += [{"id": 500 + i, "company_id": 99, "name": f"ACME-LT-{i}", "url": f"{base}/a/acme-lt-{i}"}
                 for i in range(3)]
    h.procedures += [{"id": 700 + i, "company_id": 99, "name": name, "url": f"{base}/kba/{700 + i}"}
                     for i, name in enumerate(["Onboarding", "VPN troubleshooting", "Backup restore", "Offboarding"])]


@dataclass
class FakeItGlue(_Loopback):
    organizations: list[dict] = field(default_factory=list)
    configurations: list[dict] = field(default_factory=list)
    documents: dict[str, list[dict]] = field(default_factory=dict)  # organization id -> documents
    sections: dict[str, list[dict]] = field(default_factory=dict)  # document id -> sections

    def route(self, path: str, query: dict[str, str]) -> web.StreamResponse:
        size = int(query.get("page[size]", "50"))
        if size > 1000:
            return web.json_response({"errors": [{"status": "400", "title": "page[size] too large"}]}, status=400)
        if path == "/organizations":
            rows = [o for o in self.organizations
                    if query.get("filter[psa_id]", o["attributes"].get("psa-id")) == o["attributes"].get("psa-id")
                    and query.get("filter[name]", o["attributes"]["name"]) == o["attributes"]["name"]]
            return self._page(path, rows, query, size)
        if path == "/configurations":
            rows = [c for c in self.configurations
                    if str(c["attributes"]["organization-id"]) == query.get("filter[organization_id]")
                    and query.get("filter[psa_id]", c["attributes"].get("psa-id")) == c["attributes"].get("psa-id")
                    and query.get("filter[name]", c["attributes"]["name"]) == c["attributes"]["name"]]
            return self._page(path, rows, query, size)
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[0] == "organizations" and parts[2:] == ["relationships", "documents"]:
            folder = query.get("filter[document_folder_id]")
            rows = [d for d in self.documents.get(parts[1], []) if folder == "null" or str(
                d["attributes"].get("document-folder-id") or "") == (folder or "")]
            return self._page(path, rows, query, size)
        if len(parts) == 4 and parts[0] == "documents" and parts[2:] == ["relationships", "sections"]:
            if not any(d["id"] == parts[1] for docs in self.documents.values() for d in docs):
                return web.json_response({"errors": [{"status": "404", "title": "Record not found"}]}, status=404)
            rows = sorted(self.sections.get(parts[1], []), key=lambda r: r["attributes"]["sort"])
            return self._page(path, rows, query, size)
        return web.json_response({"errors": [{"status": "404", "title": "Not found"}]}, status=404)

    def _page(self, path: str, rows: list[dict], query: dict[str, str], size: int) -> web.StreamResponse:
        number = int(query.get("page[number]", "1"))
        chunk = rows[(number - 1) * size: number * size]
        pages = max(1, -(-len(rows) // size))
        links: dict[str, Any] = {}
        if number < pages:
            rest = "&".join(f"{k}={v}" for k, v in query.items() if k != "page[number]")
            links["next"] = f"{self.url}{path}?{rest}&page[number]={number + 1}"
        return web.json_response({"data": chunk, "links": links,
                                  "meta": {"current-page": number, "total-pages": pages, "total-count": len(rows)}})


def seed_itglue(g: FakeItGlue, *, psa_id: str = "250", orgs: int = 120) -> None:
    """Many organizations (several pages); Acme Corp has PSA id `psa_id`, a configuration and documents."""
    def rec(kind: str, rid: int | str, **attrs: Any) -> dict:
        return {"id": str(rid), "type": kind, "attributes": {**attrs, "resource-url": f"{g.url}/{kind}/{rid}"}}

    g.organizations += [rec("organizations", i, name=f"Org {i:03d}", **{"psa-id": None}) for i in range(1, orgs)]
    g.organizations.append(rec("organizations", 4242, name="Acme Corp", **{"psa-id": psa_id}))
    g.configurations += [rec("configurations", 9000 + i, name=f"ACME-LT-{i}", **{"organization-id": 4242,
                                                                                "psa-id": str(77 + i)})
                         for i in range(3)]
    g.documents["4242"] = [rec("documents", 3000 + i, name=f"Runbook {i}") for i in range(5)]


def itglue_section(g: FakeItGlue, document_id: int | str, kind: str, content: str, *, level: int | None = None) -> dict:
    """Append a section to a document (`kind` Text | Heading | Step | Gallery), in order."""
    rows = g.sections.setdefault(str(document_id), [])
    attrs: dict[str, Any] = {"resource-type": f"Document::{kind}", "content": content, "sort": len(rows),
                             "document-id": int(document_id)}
    if level is not None:
        attrs["level"] = level
    row = {"id": str(800_000 + sum(len(v) for v in g.sections.values())), "type": "document-sections",
           "attributes": attrs}
    rows.append(row)
    return row
