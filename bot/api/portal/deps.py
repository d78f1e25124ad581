"""Request plumbing of the REST API: bearer-key authentication, scopes, rate limits, idempotent writes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.api import problems
from core.apikeys import Principal, Unauthenticated
from core.context import Actor
from core.errors import Conflict, DeskbridgeError, InvalidInput, PermissionDenied
from core.idempotency import Claim, request_hash

if TYPE_CHECKING:
    from bot.main import Deskbridge

PREFIX = "/api/msp-portal"
bearer = HTTPBearer(auto_error=False, description="An API key from `deskbridge apikey create`")

# (status, body, headers) of a successful endpoint run.
Result = tuple[int, Any, dict[str, str]]


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated key and the container, for one request."""

    principal: Principal
    container: Deskbridge

    @property
    def actor(self) -> Actor:
        return self.principal.actor()


def container_of(request: Request) -> Deskbridge:
    container: Deskbridge = request.app.state.container
    return container


async def _authenticate(request: Request,
                        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
    container = container_of(request)
    if creds is None or creds.scheme.lower() != "bearer":
        raise Unauthenticated("No API key was sent.",
                              hint="Send `Authorization: Bearer <key>` with a key from `deskbridge apikey create`.")
    principal = container.apikeys.cached(creds.credentials)
    if principal is None:
        principal = await _verified(request, container, creds.credentials)
    wait = request.app.state.portal_limiter.take(principal.key_id)
    if wait > 0:
        raise problems.RateLimited(wait)
    return Caller(principal, container)


async def _verified(request: Request, container: Deskbridge, token: str) -> Principal:
    """Check the key against the database, within the client's budget of failed authentications."""
    failures = request.app.state.portal_auth_failures
    client = request.client.host if request.client else "unknown"
    wait = failures.wait(client)
    if wait > 0:
        raise problems.RateLimited(wait, "Too many failed authentications from this address.")
    try:
        return await container.apikeys.authenticate(token)
    except Unauthenticated:
        failures.take(client)
        raise


def needs(scope: str) -> Callable[..., Awaitable[Caller]]:
    """A dependency: the caller, who must hold `scope` (read < write < admin), else 403."""

    async def check(caller: Annotated[Caller, Depends(_authenticate)]) -> Caller:
        if not caller.principal.has(scope):
            raise PermissionDenied(f"This API key lacks the '{scope}' scope.",
                                   hint=f"Create a key with `deskbridge apikey create <name> --scope {scope}`.")
        return caller

    return check


Reader = Annotated[Caller, Depends(needs("read"))]
Writer = Annotated[Caller, Depends(needs("write"))]
Admin = Annotated[Caller, Depends(needs("admin"))]
IdemKey = Annotated[str | None, Header(
    alias="Idempotency-Key", max_length=255,
    description="Retry-safe writes: the same key with the same body replays the first response (kept 24 h)")]


async def idempotent(request: Request, caller: Caller, key: str | None, payload: Any,
                     work: Callable[[], Awaitable[Result]],
                     rebuild: Callable[[dict[str, Any]], Awaitable[Result]]) -> JSONResponse:
    """Run `work` once per Idempotency-Key (Stripe's semantics, see core/idempotency.py).

    `rebuild(made)` answers a retry whose first attempt committed but died before its response was saved:
    `made` holds the ids of the tickets and timeline entries that attempt created."""
    if key is None:
        status, body, headers = await work()
        return JSONResponse(body, status_code=status, headers=headers)
    svc = caller.container.idempotency
    got = await svc.claim(caller.principal.workspace_id, key, request_hash(request.method, request.url.path, payload))
    if not isinstance(got, Claim):
        saved = got.body
        headers = {**saved.get("headers", {}), "Idempotent-Replayed": "true"}
        media = problems.MEDIA_TYPE if got.status >= 400 else "application/json"
        return JSONResponse(saved.get("body"), status_code=got.status, headers=headers, media_type=media)
    if got.rebuild is not None:
        status, body, headers = await rebuild(got.rebuild)  # a service error leaves the key to the next retry
        await svc.complete(got, status, {"body": body, "headers": headers})
        return JSONResponse(body, status_code=status, headers={**headers, "Idempotent-Replayed": "true"})
    try:
        async with svc.held(got):
            status, body, headers = await work()
    except DeskbridgeError as exc:
        # The endpoint ran and refused: that answer is saved too, so a retry gets the same one.
        status, body, headers = problems.from_error(exc, request.url.path)
        await svc.complete(got, status, {"body": body, "headers": headers})
        return problems.response(status, body, headers)
    except BaseException:
        await asyncio.shield(svc.release(got))  # a retry runs the work again, or rebuilds what it committed
        raise
    await svc.complete(got, status, {"body": body, "headers": headers})
    return JSONResponse(body, status_code=status, headers=headers)


def lost_result() -> Conflict:
    """The first request's work committed but what it made cannot be found (e.g. deleted since)."""
    return Conflict("The first request with this Idempotency-Key completed, but its result no longer exists.",
                    hint="Look the result up (e.g. list recent tickets) instead of retrying.")


async def known_query(request: Request, _: Annotated[Caller, Depends(_authenticate)]) -> None:
    """A query parameter the route does not take is refused (422), not ignored: a misspelt filter (`priorty=high`)
    would otherwise return every ticket as if filtered. Runs after authentication (401 first)."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = sorted(_query_names(dependant))
    unknown = [name for name in request.query_params if name not in known]
    if unknown:
        where = f"{request.method} {getattr(route, 'path', request.url.path).removeprefix(PREFIX)}"
        takes = f"Parameters of {where}: {', '.join(known)}." if known else f"{where} takes no query parameters."
        raise InvalidInput(f"'{unknown[0][:40]}' is not a parameter of {where}.", hint=f"{takes} See /docs.",
                           field="query")


def _query_names(dependant: Any) -> set[str]:
    """The query parameters a route takes, its dependencies' included."""
    names = {f.alias for f in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names
