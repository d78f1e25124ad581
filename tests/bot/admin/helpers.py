"""Driving the admin pages like a browser: sign in through a link, read a page's CSRF token, post its forms."""

from __future__ import annotations

import re

import httpx

from tests.bot.api.conftest import Api


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


async def login(client: httpx.AsyncClient, token: str) -> httpx.Response:
    """Open a sign-in link and press its button (the form's CSRF token comes with the page)."""
    form = await client.get("/admin/login", params={"token": token})
    return await client.post("/admin/login", data={"token": token, "csrf": csrf_of(form.text)})


async def sign_in(api: Api, client: httpx.AsyncClient | None = None) -> str:
    """Sign in through a fresh link; returns the session's CSRF token."""
    client = client or api.client
    token, _ = await api.container.admin_links.create(api.ws)
    r = await login(client, token)
    assert r.status_code == 303 and r.headers["location"] == "/admin", r.text
    page = await client.get("/admin/dead-letters")
    assert page.status_code == 200
    return csrf_of(page.text)
