"""Slack installations on our database: bolt's installation store, OAuth state store and authorize.

Tokens live encrypted in `chat_installation` (core/chat/installations.py). `DeskbridgeAuthorize` answers every
request from that table (briefly cached), so an unknown workspace is refused before any listener runs,
in OAuth mode and in single-workspace token mode alike. OAuth `state` values are HMAC-signed and
single-use (a processed-event row), so no extra table is needed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore

from core.chat import ChatService
from core.chat import Installation as ChatInstallation
from core.singleflight import SingleFlight

PLATFORM = "slack"
WORKSPACE_KEY = "deskbridge_workspace_id"


class DeskbridgeAuthorize(AsyncAuthorize):
    """Bot token and workspace for a request's team, from our installation table."""

    def __init__(self, chat: ChatService) -> None:
        super().__init__()
        self.chat = chat
        self._loading: SingleFlight[ChatInstallation | None] = SingleFlight()

    async def installation(self, team_id: str | None, enterprise_id: str | None) -> ChatInstallation | None:
        """ChatService caches installations briefly; when the entry expires under a burst, one lookup runs
        and the other requests wait for it (no herd of identical queries holding the pool before the ack).
        A cache hit (nearly every request, asked twice per request: the door and bolt's authorize) is
        answered without starting a task."""
        hit, inst = self.chat.cached_installation(PLATFORM, team_id, enterprise_id)
        if hit:
            return inst
        return await self._loading.run((team_id, enterprise_id),
                                       lambda: self.chat.installation(PLATFORM, team_id, enterprise_id))

    async def __call__(self, *, context: Any, enterprise_id: str | None, team_id: str | None,
                       user_id: str | None, **_: Any) -> AuthorizeResult | None:
        inst = await self.installation(team_id, enterprise_id)
        if inst is None or not inst.bot_token:
            return None
        context[WORKSPACE_KEY] = inst.workspace_id
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id or inst.team_id,
                               bot_user_id=inst.bot_user_id, bot_id=inst.bot_id, bot_token=inst.bot_token,
                               user_id=user_id)


class DbInstallationStore(AsyncInstallationStore):
    """bolt's async installation store, writing our `chat_installation` rows (tokens encrypted)."""

    def __init__(self, chat: ChatService, client_id: str | None = None) -> None:
        self.chat = chat
        self.client_id = client_id

    @property
    def logger(self) -> Any:
        import logging

        return logging.getLogger("deskbridge.slack.install")

    async def async_save(self, installation: Installation) -> None:
        await self.chat.save_installation(
            platform=PLATFORM, team_id=installation.team_id or installation.enterprise_id or "",
            enterprise_id=installation.enterprise_id, bot_token=installation.bot_token,
            bot_user_id=installation.bot_user_id, bot_id=installation.bot_id, team_name=installation.team_name,
            data={"app_id": installation.app_id, "bot_scopes": ",".join(installation.bot_scopes or []),
                  "installer_user_id": installation.user_id, "team_name": installation.team_name,
                  "is_enterprise_install": bool(installation.is_enterprise_install)})

    async def async_save_bot(self, bot: Bot) -> None:
        await self.chat.save_installation(platform=PLATFORM, team_id=bot.team_id or bot.enterprise_id or "",
                                          enterprise_id=bot.enterprise_id, bot_token=bot.bot_token,
                                          bot_user_id=bot.bot_user_id, bot_id=bot.bot_id)

    async def _find(self, enterprise_id: str | None, team_id: str | None) -> ChatInstallation | None:
        inst = await self.chat.installation(PLATFORM, team_id, enterprise_id)
        return inst if inst is not None and inst.bot_token else None

    async def async_find_bot(self, *, enterprise_id: str | None, team_id: str | None,
                             is_enterprise_install: bool | None = False) -> Bot | None:
        inst = await self._find(enterprise_id, team_id)
        if inst is None:
            return None
        return Bot(app_id=inst.data.get("app_id"), enterprise_id=inst.enterprise_id, team_id=inst.team_id,
                   bot_token=inst.bot_token or "", bot_id=inst.bot_id or "", bot_user_id=inst.bot_user_id or "",
                   bot_scopes=inst.data.get("bot_scopes", ""), installed_at=time.time())

    async def async_find_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                      user_id: str | None = None,
                                      is_enterprise_install: bool | None = False) -> Installation | None:
        inst = await self._find(enterprise_id, team_id)
        if inst is None:
            return None
        return Installation(app_id=inst.data.get("app_id"), enterprise_id=inst.enterprise_id, team_id=inst.team_id,
                            bot_token=inst.bot_token or "", bot_id=inst.bot_id, bot_user_id=inst.bot_user_id,
                            bot_scopes=inst.data.get("bot_scopes", ""),
                            user_id=user_id or inst.data.get("installer_user_id") or "")

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.chat.delete_installation(PLATFORM, team_id or enterprise_id or "")

    async def async_delete_installation(self, *, enterprise_id: str | None, team_id: str | None,
                                        user_id: str | None = None) -> None:
        if user_id is None:
            await self.chat.delete_installation(PLATFORM, team_id or enterprise_id or "")


class SignedStateStore(AsyncOAuthStateStore):
    """OAuth `state`: `<issued>.<nonce>.<hmac>`; valid for `expiration_seconds`, accepted once."""

    def __init__(self, chat: ChatService, key: str, *, expiration_seconds: int = 600) -> None:
        self.chat = chat
        self._key = hashlib.sha256(("deskbridge-oauth-state:" + key).encode()).digest()
        self.expiration_seconds = expiration_seconds

    @property
    def logger(self) -> Any:
        import logging

        return logging.getLogger("deskbridge.slack.install")

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()[:32]

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        payload = f"{int(time.time())}.{secrets.token_hex(12)}"
        return f"{payload}.{self._sign(payload)}"

    async def async_consume(self, state: str) -> bool:
        try:
            issued, nonce, sig = state.split(".")
            age = time.time() - int(issued)
        except (ValueError, AttributeError):
            return False
        if not hmac.compare_digest(sig, self._sign(f"{issued}.{nonce}")) or not 0 <= age <= self.expiration_seconds:
            return False
        return await self.chat.first_time("slack-oauth-state", nonce)
