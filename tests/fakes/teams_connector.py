"""A loopback stand-in for the Bot Framework as a Teams bot sees it: the Bot Connector, the OpenID metadata
and signing keys, and the Entra token endpoint.

Runs an aiohttp server on 127.0.0.1 and an ephemeral port. Behaves like the real services where our code
depends on it:
- `GET /v1/.well-known/openidconfiguration` names `jwks_uri`; `GET /v1/.well-known/keys` serves the public
  half of a local RSA key (with Teams' `endorsements`); `sign(activity)` makes the token Teams would send
  with an activity (issuer, audience, `serviceurl`, `exp`/`nbf`), each claim overridable for bad-input tests;
- `POST /{tenant}/oauth2/v2.0/token` grants a client-credentials token (a signed JWT, as Entra's are) only
  for the registered app id and secret (or a client assertion signed with a registered certificate key),
  answering Entra's `invalid_client` / `unauthorized_client` otherwise; `token_requests` records each;
- `/v3/conversations...` (create conversation, post/reply/update/delete activity) require a bearer token
  this fake granted (401 otherwise), hand out increasing activity ids and record every call in `calls`;
  `conversations[id]` holds the activities now in each conversation (updates replace, deletes remove);
- `fail(op, status=429, retry_after=1, times=1)` scripts throttling and errors (`op`: create, reply, update,
  delete, conversation); `delay_s` makes every connector answer slow.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes import loopback

ISSUER = "https://api.botframework.com"
KID = "test-key-1"


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class Call:
    op: str  # create | reply | update | delete | conversation
    conversation_id: str
    activity_id: str | None
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Failure:
    status: int
    retry_after: float | None
    times: int


class FakeBotFramework:
    def __init__(self, *, app_id: str, app_secret: str = "s3cret-value", tenant_id: str = "tenant-msp") -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.tenant_id = tenant_id
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # a key nobody publishes
        self.cert_thumbprints: set[str] = set()  # x5t#S256 of certificates registered for the app
        self.cert_keys: dict[str, Any] = {}
        self.calls: list[Call] = []
        self.token_requests: list[dict[str, str]] = []
        self.key_fetches = 0
        self.conversations: dict[str, dict[str, dict[str, Any]]] = {}
        self.delay_s = 0.0
        self.users: dict[str, dict[str, Any]] = {}  # aadObjectId -> TeamsChannelAccount (roster lookups)
        self._failures: dict[str, list[_Failure]] = {}
        self._granted: set[str] = set()
        self._ids = itertools.count(1_700_000_000_000)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ------------------------------------------------------------ scripting

    def fail(self, op: str, *, status: int = 429, retry_after: float | None = 1, times: int = 1) -> None:
        self._failures.setdefault(op, []).append(_Failure(status, retry_after, times))

    def add_user(self, aad_id: str, *, name: str, email: str | None = None) -> None:
        self.users[aad_id] = {"id": f"29:{aad_id}", "aadObjectId": aad_id, "name": name, "email": email,
                              "userPrincipalName": email, "tenantId": self.tenant_id}

    def register_certificate(self, thumbprint_s256: str, public_key: Any) -> None:
        self.cert_thumbprints.add(thumbprint_s256)
        self.cert_keys[thumbprint_s256] = public_key

    def of(self, op: str) -> list[Call]:
        return [c for c in self.calls if c.op == op]

    def clear(self) -> None:
        self.calls.clear()

    @property
    def service_url(self) -> str:
        return self.base_url + "/"

    @property
    def openid_url(self) -> str:
        return self.base_url + "/v1/.well-known/openidconfiguration"

    @property
    def login_url(self) -> str:
        return self.base_url

    def sign(self, activity: dict[str, Any] | None = None, *, aud: str | None = None, iss: str = ISSUER,
             service_url: str | None = None, exp_in: float = 3600, nbf_in: float = -60, key: Any = None,
             kid: str = KID, alg: str = "RS256", drop: tuple[str, ...] = ()) -> str:
        """The bearer token the Bot Framework sends with an activity (every claim overridable)."""
        now = time.time()
        claims: dict[str, Any] = {
            "iss": iss, "aud": aud or self.app_id, "exp": int(now + exp_in), "nbf": int(now + nbf_in),
            "iat": int(now + nbf_in), "serviceurl": service_url if service_url is not None else
            (activity or {}).get("serviceUrl", self.service_url)}
        for k in drop:
            claims.pop(k, None)
        if alg == "none":
            return jwt.encode(claims, None, algorithm="none")
        return jwt.encode(claims, key or self.key, algorithm=alg, headers={"kid": kid})

    # ------------------------------------------------------------ server

    async def start(self) -> FakeBotFramework:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_get("/v1/.well-known/openidconfiguration", self._openid)
        app.router.add_get("/v1/.well-known/keys", self._keys)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_post("/v3/conversations", self._create_conversation)
        app.router.add_post("/v3/conversations/{cid}/activities", self._activity)
        app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self._activity)
        app.router.add_put("/v3/conversations/{cid}/activities/{aid}", self._activity)
        app.router.add_delete("/v3/conversations/{cid}/activities/{aid}", self._activity)
        app.router.add_get("/v3/conversations/{cid}/members/{uid}", self._member)
        self._runner, port = await loopback.serve(app, access_log=True)
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        await loopback.stop(self._runner)

    async def _openid(self, request: web.Request) -> web.Response:
        return web.json_response({"issuer": ISSUER, "jwks_uri": self.base_url + "/v1/.well-known/keys",
                                  "id_token_signing_alg_values_supported": ["RS256"]})

    async def _keys(self, request: web.Request) -> web.Response:
        self.key_fetches += 1
        pub = self.key.public_key().public_numbers()
        return web.json_response({"keys": [{"kty": "RSA", "use": "sig", "kid": KID, "n": _b64(pub.n),
                                            "e": _b64(pub.e), "endorsements": ["msteams", "webchat"]}]})

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_requests.append({k: str(v) for k, v in form.items() if k != "client_secret"})
        if form.get("grant_type") != "client_credentials" or form.get("client_id") != self.app_id:
            return web.json_response({"error": "unauthorized_client",
                                      "error_description": "AADSTS700016: Application not found"}, status=400)
        if request.match_info["tenant"] != self.tenant_id:
            return web.json_response({"error": "invalid_request",
                                      "error_description": "AADSTS90002: Tenant not found"}, status=400)
        if "client_assertion" in form:
            if not self._assertion_ok(str(form["client_assertion"]), str(request.url)):
                return web.json_response({"error": "invalid_client",
                                          "error_description": "AADSTS700027: assertion invalid"}, status=401)
        elif form.get("client_secret") != self.app_secret:
            return web.json_response({"error": "invalid_client",
                                      "error_description": "AADSTS7000215: Invalid client secret"}, status=401)
        token = jwt.encode({"aud": "https://api.botframework.com", "appid": self.app_id, "tid": self.tenant_id,
                            "exp": int(time.time() + 3600), "jti": uuid.uuid4().hex}, self.key, algorithm="RS256")
        self._granted.add(token)
        return web.json_response({"token_type": "Bearer", "expires_in": 3599, "access_token": token})

    def _assertion_ok(self, assertion: str, url: str) -> bool:
        try:
            header = jwt.get_unverified_header(assertion)
            thumb = header.get("x5t#S256")
            key = self.cert_keys.get(thumb or "")
            if key is None:
                return False
            jwt.decode(assertion, key, algorithms=["RS256"], audience=url.split("?")[0],
                       options={"require": ["exp", "iss", "sub", "jti"]})
            return True
        except jwt.PyJWTError:
            return False

    def _authorized(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        return auth.startswith("Bearer ") and auth.removeprefix("Bearer ") in self._granted

    def _scripted(self, op: str) -> web.Response | None:
        queue = self._failures.get(op) or []
        if not queue:
            return None
        f = queue[0]
        f.times -= 1
        if f.times <= 0:
            queue.pop(0)
        headers = {"Retry-After": f"{f.retry_after:g}"} if f.retry_after is not None else {}
        code = {429: "TooManyRequests", 412: "PreconditionFailed", 502: "BadGateway"}.get(f.status, "ServiceError")
        return web.json_response({"error": {"code": code, "message": "scripted failure"}}, status=f.status,
                                 headers=headers)

    async def _member(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"message": "Authorization has been denied for this request."}, status=401)
        uid = request.match_info["uid"]
        user = self.users.get(uid) or next((u for u in self.users.values() if u["id"] == uid), None)
        if user is None:
            return web.json_response({"error": {"code": "MemberNotFoundInConversation"}}, status=404)
        return web.json_response({k: v for k, v in user.items() if v is not None})

    async def _create_conversation(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"message": "Authorization has been denied for this request."}, status=401)
        body = await request.json()
        if (r := self._scripted("conversation")) is not None:
            return r
        channel = ((body.get("channelData") or {}).get("channel") or {}).get("id")
        activity = body.get("activity")
        aid = str(next(self._ids))
        cid = f"{channel};messageid={aid}" if channel and activity else f"a:{uuid.uuid4().hex}"
        self.calls.append(Call("conversation", cid, aid if activity else None, body))
        self.conversations.setdefault(cid, {})
        if activity:
            self.conversations[cid][aid] = activity
        return web.json_response({"id": cid, "activityId": aid if activity else None}, status=201)

    async def _activity(self, request: web.Request) -> web.Response:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if not self._authorized(request):
            return web.json_response({"message": "Authorization has been denied for this request."}, status=401)
        cid, aid = request.match_info["cid"], request.match_info.get("aid")
        op = {"POST": "reply" if aid else "create", "PUT": "update", "DELETE": "delete"}[request.method]
        body: dict[str, Any] = {}
        if request.method != "DELETE":
            try:
                body = await request.json()
            except json.JSONDecodeError:
                return web.json_response({"error": {"code": "BadArgument", "message": "bad json"}}, status=400)
            size = len(json.dumps(body).encode("utf-16-le"))
            if size > 100 * 1024 * 2:  # 100 KB measured as UTF-16 characters
                return web.json_response({"error": {"code": "MessageSizeTooBig"}}, status=413)
        if (r := self._scripted(op)) is not None:
            return r
        conv = self.conversations.setdefault(cid, {})
        if op in ("update", "delete") and aid not in conv:
            return web.json_response({"error": {"code": "ActivityNotFoundInConversation"}}, status=404)
        self.calls.append(Call(op, cid, aid, body))
        if op == "delete":
            conv.pop(aid or "", None)
            return web.Response(status=200)
        if op == "update":
            conv[aid or ""] = body
            return web.json_response({"id": aid})
        new_id = str(next(self._ids))
        conv[new_id] = body
        return web.json_response({"id": new_id}, status=201)


def thumbprint_s256(cert_der: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(cert_der).digest()).rstrip(b"=").decode()


def public_pem(key: Any) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
