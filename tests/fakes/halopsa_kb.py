"""The fake HaloPSA's knowledge base: `GET /KBArticle` (paged under `articles` like Halo's other lists; a list
row is the article without its body or access list) and `GET /KBArticle/{id}` (the full KBEntry). The shape
and its evidence: connectors/halopsa/kb.py."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.halopsa_http import FakeRequest, FakeResponse, exception_error, json_response
from tests.fakes.halopsa_routes import contains, int_param, paged, route, truthy

if TYPE_CHECKING:
    from tests.fakes.halopsa import FakeHalo

LIST_FIELDS = ("id", "name", "inactive", "date_created", "date_edited", "view_count", "type", "tag_string")


def _flag(req: FakeRequest, name: str, default: bool) -> bool:
    raw = req.query.get(name)
    return default if raw in (None, "") else truthy(raw)


@route("GET", "/api/KBArticle")
def list_articles(fake: FakeHalo, req: FakeRequest) -> FakeResponse:
    """Active (and on request inactive) articles; `search` in the name, `client_id` those open to a client."""
    active, inactive = _flag(req, "includeactive", True), _flag(req, "includeinactive", False)
    rows = [a for a in fake.kb.values() if (inactive if a["inactive"] else active)]
    if req.query.get("search"):
        rows = [a for a in rows if contains((a["name"],), req.query["search"])]
    client = int_param(req, "client_id")
    if client is not None:
        rows = [a for a in rows if not a["kbentryclientaccess"]
                or any(x["client_id"] == client for x in a["kbentryclientaccess"])]
    order = req.query.get("order") or "id"
    if order not in LIST_FIELDS:
        raise exception_error(400, f"Invalid order field {order}.")
    rows.sort(key=lambda a: (a[order], a["id"]), reverse=truthy(req.query.get("orderdesc")))
    return paged(req, rows, "articles", render=lambda a: {k: a[k] for k in LIST_FIELDS})


@route("GET", "/api/KBArticle/{id}")
def get_article(fake: FakeHalo, req: FakeRequest, id: str) -> FakeResponse:  # noqa: A002
    """The full KBEntry."""
    row = fake.kb.get(int(id) if id.isdigit() else -1)
    if row is None:
        raise exception_error(404, f"KB article {id} not found.")
    out: dict[str, Any] = dict(row)
    return json_response(out)
