"""Files a technician drops into a ticket's thread: Slack's file objects described for core, downloaded on demand.

Slack keeps a shared file's bytes behind `url_private_download`, readable with the bot token
(`Authorization: Bearer`, scope files:read). Slack does not refuse a request without it: it redirects to
its sign-in page (HTML), which is recognised and reported, never attached. The token only goes to the
Slack of our Web API base URL (DESKBRIDGE_SLACK_API_URL: slack.com and its subdomains such as
files.slack.com; GovSlack; a test fake); a redirect to Slack's CDN (pre-signed URLs) is followed
without it; any other host is refused. What to do with the bytes (size cap, attachment) is core's
(ChatCommands.thread_message); this module only fetches them, streaming and stopping once more than the
cap core asks for has arrived, so a file larger than Slack said never fills memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from core.chat import ChatFile
from core.errors import DeskbridgeError

log = logging.getLogger("deskbridge.slack.files")

HOSTED_MODES = frozenset({"hosted", "snippet"})  # Slack holds the bytes (snippets are text files)
GONE_MODES = frozenset({"tombstone", "hidden_by_limit"})  # deleted, or hidden by a free plan's limit
CDN_DOMAINS = ("slack-edge.com",)  # pre-signed download URLs: followed, but never sent the token
MAX_REDIRECTS = 3
TIMEOUT = httpx.Timeout(10.0, read=30.0)  # per connect / per read
DEADLINE_S = 120.0  # one file, start to finish (a download holds one of the post-ack workers)

# User-facing text (the Slack side of a failed download; core words the size and support refusals).
AGAIN_HINT = "Share the file again in a moment, or attach it in the PSA directly."
SIGN_IN_PAGE = "Slack did not let Deskbridge download {name} (it answered with its sign-in page), so it was not attached."
SIGN_IN_HINT = ("The app may be missing the files:read permission: ask a Slack admin to reinstall Deskbridge. "
                "Meanwhile attach the file in the PSA directly.")
GONE = "{name} is no longer on Slack (it was deleted before Deskbridge could copy it), so it was not attached."
GONE_HINT = "Share it again, or attach it in the PSA directly."
NOT_SLACK = "{name} is not on a Slack file server, so Deskbridge did not download it."
NOT_SLACK_HINT = "Attach it in the PSA directly."
FAILED = "Slack did not hand over {name} ({why}), so it was not attached."


class DownloadFailed(DeskbridgeError):
    """Slack did not hand over a file's bytes (the message names the file and says why)."""


class SlackFiles:
    """The files of one thread message: described for core, each downloaded when core asks for it.

    Use as `async with SlackFiles(api_url, token) as files:`; the HTTP client is opened on the first
    download only, so a message without files costs nothing.
    """

    def __init__(self, api_url: str, token: str, *, deadline_s: float = DEADLINE_S,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        base = urlsplit(api_url)
        self._scheme = base.scheme
        self._domain = (base.hostname or "").removeprefix("api.")
        self._token = token
        self._deadline_s = deadline_s
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> SlackFiles:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def describe(self, files: Any) -> list[ChatFile]:
        """The event's `files` as core sees them (name, type, declared size, where the bytes are)."""
        out: list[ChatFile] = []
        for f in files if isinstance(files, list) else []:
            if not isinstance(f, dict):
                continue
            name = str(f.get("name") or f.get("title") or f.get("id") or "a file")
            size = f.get("size")
            out.append(ChatFile(name=name, content_type=str(f.get("mimetype") or "application/octet-stream"),
                                size=size if isinstance(size, int) and size >= 0 else None,
                                fetch=self._fetcher(f, name), stored=_stored(f)))
        return out

    def _fetcher(self, f: dict[str, Any], name: str) -> Callable[[int], Awaitable[bytes | None]]:
        url = str(f.get("url_private_download") or f.get("url_private") or "")
        declared = str(f.get("mimetype") or "")

        async def fetch(limit: int) -> bytes | None:
            return await self.download(url, name=name, limit=limit, declared_type=declared, file_id=f.get("id"))

        return fetch

    async def download(self, url: str, *, name: str, limit: int, declared_type: str = "",
                       file_id: Any = None) -> bytes | None:
        """The file's bytes; None once more than `limit` bytes arrived (the download is stopped there)."""
        try:
            async with asyncio.timeout(self._deadline_s):
                return await self._get(url, name, limit, declared_type, file_id)
        except TimeoutError:
            log.warning("slack file download timed out", extra={"file_id": file_id})
            raise DownloadFailed(FAILED.format(name=name, why="it took too long"), hint=AGAIN_HINT) from None
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:  # unreachable, reset, malformed URL
            log.warning("slack file download failed", extra={"file_id": file_id, "error": type(exc).__name__})
            raise DownloadFailed(FAILED.format(name=name, why="Slack could not be reached"), hint=AGAIN_HINT) from None

    async def _get(self, url: str, name: str, limit: int, declared_type: str, file_id: Any) -> bytes | None:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, transport=self._transport)
        for _ in range(MAX_REDIRECTS + 1):
            headers = self._headers_for(url, name)
            async with self._http.stream("GET", url, headers=headers) as resp:
                if resp.is_redirect and resp.headers.get("location"):
                    url = urljoin(url, resp.headers["location"])
                    continue
                if resp.status_code in (404, 410):
                    raise DownloadFailed(GONE.format(name=name), hint=GONE_HINT)
                if resp.status_code in (401, 403):
                    raise DownloadFailed(SIGN_IN_PAGE.format(name=name), hint=SIGN_IN_HINT)
                if resp.status_code != 200:
                    log.warning("slack file download refused", extra={"file_id": file_id,
                                                                      "status": resp.status_code})
                    raise DownloadFailed(FAILED.format(name=name, why=f"HTTP {resp.status_code}"), hint=AGAIN_HINT)
                ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
                if ctype == "text/html" and not declared_type.lower().startswith("text/html"):
                    log.warning("slack file download got the sign-in page", extra={"file_id": file_id})
                    raise DownloadFailed(SIGN_IN_PAGE.format(name=name), hint=SIGN_IN_HINT)
                length = resp.headers.get("content-length", "")
                if length.isdigit() and int(length) > limit:
                    return None
                got = bytearray()
                async for chunk in resp.aiter_bytes():
                    got += chunk
                    if len(got) > limit:
                        log.info("slack file larger than declared: download stopped", extra={"file_id": file_id})
                        return None
                return bytes(got)
        raise DownloadFailed(FAILED.format(name=name, why="too many redirects"), hint=AGAIN_HINT)

    def _headers_for(self, url: str, name: str) -> dict[str, str]:
        """The bot token for Slack's own hosts; nothing for its CDN; any other host is refused."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if self._domain and (host == self._domain or host.endswith("." + self._domain)) \
                and parts.scheme in ("https", self._scheme):
            return {"Authorization": f"Bearer {self._token}"}
        if parts.scheme == "https" and any(host.endswith("." + d) for d in CDN_DOMAINS):
            return {}
        raise DownloadFailed(NOT_SLACK.format(name=name), hint=NOT_SLACK_HINT)


def _stored(f: dict[str, Any]) -> str:
    mode = str(f.get("mode") or "hosted")
    if mode in GONE_MODES:
        return "deleted"
    if mode == "external" or f.get("is_external"):
        return "external"
    if mode not in HOSTED_MODES:
        return "other"  # canvases, posts, e-mails: Slack documents, not files with bytes to copy
    if not (f.get("url_private_download") or f.get("url_private")):
        return "deleted"
    return "hosted"
