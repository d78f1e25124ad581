"""Admin-page session cookies: signed (HMAC-SHA256, key derived from the instance's secret key), holding the
workspace, the server-side session's id (core/admin_sessions.py: signing out revokes it there), an expiry and
the session's CSRF token. Forging or editing one fails the signature check; an expired one is refused; a
well-signed one whose server-side session has ended is refused by the page guard (bot/admin/web.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

COOKIE = "deskbridge_admin"
LOGIN_COOKIE = "deskbridge_admin_login"  # the sign-in form's double-submitted CSRF token
SESSION_SECONDS = 8 * 3600


@dataclass(frozen=True, slots=True)
class AdminSession:
    workspace_id: int
    csrf: str
    expires: int
    sid: str = ""  # the server-side session's id ("" for the sign-in form's throwaway CSRF holder)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_session(workspace_id: int, sid: str = "", *, now: float | None = None) -> AdminSession:
    """A fresh cookie session (new CSRF token) for a workspace's admin and a server-side session id."""
    start = int(now if now is not None else time.time())
    return AdminSession(workspace_id, secrets.token_urlsafe(32), start + SESSION_SECONDS, sid)


def sign(session: AdminSession, key: bytes) -> str:
    """The cookie value: base64(JSON).base64(HMAC)."""
    body = _b64(json.dumps({"ws": session.workspace_id, "sid": session.sid, "csrf": session.csrf,
                            "exp": session.expires},
                           separators=(",", ":")).encode())
    mac = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify(value: str | None, key: bytes, *, now: float | None = None) -> AdminSession | None:
    """The session in a cookie, or None when missing, forged, malformed or expired."""
    if not value or not key or len(value) > 1000 or value.count(".") != 1:
        return None
    body, mac = value.split(".")
    try:
        expected = hmac.new(key, body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(mac)):
            return None
        data = json.loads(_unb64(body))
        session = AdminSession(int(data["ws"]), str(data["csrf"]), int(data["exp"]), str(data["sid"]))
    except (ValueError, KeyError, TypeError):
        return None
    if session.expires <= (now if now is not None else time.time()):
        return None
    return session


def csrf_ok(session: AdminSession, submitted: str | None) -> bool:
    """The form's token is this session's."""
    return bool(submitted) and hmac.compare_digest(session.csrf.encode(), (submitted or "").encode())
