"""A loopback OpenID Connect provider shaped like Slack's and Microsoft Entra's, with local RSA keys.

Serves, on 127.0.0.1, what Deskbridge calls over HTTP:
    Slack:      GET /openid/connect/keys              POST /api/openid.connect.token  (200 {"ok": false} on errors)
    Microsoft:  GET /{tenant}/discovery/v2.0/keys     POST /{tenant}/oauth2/v2.0/token (400 {"error": ...})
The browser's visit to the authorize page is `approve(url, ...)`: it checks the request like the provider
does (client id, redirect URI, S256 challenge), remembers the code and returns the redirect back.
The token endpoint checks the client secret, the redirect URI, the code (once) and the PKCE verifier.
Tests can make it misbehave: sign with a key it does not publish, another audience, issuer or nonce, expired.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class Grant:
    claims: dict[str, Any]
    challenge: str
    redirect_uri: str
    client_id: str
    used: bool = False


@dataclass
class FakeOidcProvider:
    kind: str  # "slack" or "microsoft"
    client_id: str = "client-123"
    client_secret: str = "client-secret-xyz"
    tenant: str = "organizations"
    key: rsa.RSAPrivateKey = field(default_factory=_rsa)
    rogue_key: rsa.RSAPrivateKey = field(default_factory=_rsa)  # never published
    grants: dict[str, Grant] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    # misbehaviour switches
    sign_with_rogue: bool = False
    audience: str | None = None
    issuer: str | None = None
    nonce: str | None = None
    expired: bool = False
    base: str = ""

    # ------------------------------------------------------------------ the browser's visit

    def approve(self, authorize_url: str, claims: dict[str, Any]) -> str:
        """The user signs in and consents: returns the provider's redirect back (with code and state)."""
        parts = urlsplit(authorize_url)
        q = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert parts.path.endswith("/openid/connect/authorize" if self.kind == "slack" else "/oauth2/v2.0/authorize")
        assert q["response_type"] == "code" and q["client_id"] == self.client_id and "openid" in q["scope"].split()
        assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43 and q["nonce"] and q["state"]
        code = secrets.token_urlsafe(16)
        self.grants[code] = Grant({**claims, "nonce": q["nonce"]}, q["code_challenge"], q["redirect_uri"],
                                  q["client_id"])
        return f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}"

    # ------------------------------------------------------------------ what the server answers

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}

    def _issuer(self, claims: dict[str, Any]) -> str:
        if self.issuer is not None:
            return self.issuer
        return self.base if self.kind == "slack" else f"{self.base}/{claims.get('tid')}/v2.0"

    def id_token(self, grant: Grant) -> str:
        now = int(time.time()) - (7200 if self.expired else 0)
        claims = {**grant.claims, "iss": self._issuer(grant.claims), "aud": self.audience or self.client_id,
                  "iat": now, "exp": now + 300}
        if self.nonce is not None:
            claims["nonce"] = self.nonce
        return jwt.encode(claims, self.rogue_key if self.sign_with_rogue else self.key, algorithm="RS256",
                          headers={"kid": "k1"})

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(form)
        grant = self.grants.get(form.get("code", ""))
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        ok = (grant is not None and not grant.used and form.get("grant_type") == "authorization_code"
              and form.get("client_id") == self.client_id == grant.client_id
              and form.get("client_secret") == self.client_secret
              and form.get("redirect_uri") == grant.redirect_uri and challenge == grant.challenge)
        if not ok or grant is None:
            return (200, {"ok": False, "error": "invalid_code"}) if self.kind == "slack" else \
                (400, {"error": "invalid_grant"})
        grant.used = True
        body: dict[str, Any] = {"access_token": "at-" + secrets.token_hex(8), "token_type": "Bearer",
                                "id_token": self.id_token(grant)}
        return 200, ({"ok": True, **body} if self.kind == "slack" else body)

    @contextmanager
    def serve(self) -> Iterator[str]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                if self.path in ("/openid/connect/keys", f"/{fake.tenant}/discovery/v2.0/keys"):
                    self._send(200, fake.jwks())
                else:
                    self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                if self.path in ("/api/openid.connect.token", f"/{fake.tenant}/oauth2/v2.0/token"):
                    self._send(*fake.token(form))
                else:
                    self._send(404, {"error": "not_found"})

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self.base
        finally:
            server.shutdown()
            server.server_close()
