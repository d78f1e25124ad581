"""Is a saved PSA connection usable right now? (credentials, reachability, callback support) for `deskbridge
doctor`: the PSA's answer in words and what to do next, never a traceback or a secret."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from connectors.base import CallbackRegistrar
from connectors.errors import PsaAuthError, PsaError, PsaRateLimited, PsaTimeout, PsaUnavailable
from core.connections import ConnectionService, check_failure
from core.errors import DeskbridgeError
from core.rate_headroom import ADVICE
from store.tables import PsaConnection


@dataclass(frozen=True, slots=True)
class ConnectionHealth:
    ok: bool
    display_name: str | None  # what the PSA calls the account (when the check passed)
    problem: str | None
    fix: str | None
    registers_callbacks: bool  # the connector can register the PSA's callbacks itself
    details: Mapping[str, str] = field(default_factory=dict)  # what check_credentials reported (e.g. usage)


def _fix(name: str, kind: str, exc: PsaError) -> str:
    if isinstance(exc, PsaAuthError):
        return (f"Enter working credentials on the connection's admin page (Re-authenticate) or with "
                f"`deskbridge connection reauth {name}`.")
    if isinstance(exc, (PsaUnavailable, PsaTimeout)):
        return "Check the site/URL setting, DNS and that this machine may reach the PSA, then check again."
    if isinstance(exc, PsaRateLimited):
        return "The PSA is rate limiting Deskbridge right now (it retries by itself). " + ADVICE.get(
            kind, "Try again in a minute.")
    return "Fix the setting named above (`deskbridge connection list` shows them), then check again."


async def check_connection(connections: ConnectionService, conn: PsaConnection) -> ConnectionHealth:
    """Ask the PSA whether the stored credentials work (one light request)."""
    try:
        async with connections.open(conn) as psa:
            info = await psa.check_credentials()
            registrar = isinstance(psa, CallbackRegistrar)
    except PsaError as exc:
        return ConnectionHealth(False, None, check_failure(conn.kind, exc)[0].replace(" Nothing was saved.", ""),
                                _fix(conn.name, conn.kind, exc), False)
    except DeskbridgeError as exc:  # credentials unreadable with this key, unknown kind
        return ConnectionHealth(False, None, exc.message,
                                exc.hint or (f"Re-enter them on the connection's admin page (Re-authenticate) or with "
                                                            f"`deskbridge connection reauth {conn.name}`."), False)
    return ConnectionHealth(True, info.display_name, None, None, registrar, dict(info.details))
