"""Sign in with Slack / Microsoft (OpenID Connect): not wired yet."""

from __future__ import annotations

from fastapi import APIRouter

from bot.admin.web import Pages


def register(router: APIRouter, pages: Pages) -> None:
    return None
