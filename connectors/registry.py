"""PSA kind -> connector class. Used by the composition root only (core/ never imports this)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import httpx

from connectors.base import AccountInfo, Capabilities, ConnectionConfig, PsaConnector, SetupFields

# kind -> "module:Class"; imported lazily so a broken optional connector cannot stop the others.
_CONNECTORS: dict[str, str] = {
    "sandbox": "connectors.sandbox.connector:SandboxConnector",
    "connectwise": "connectors.connectwise.connector:ConnectWiseConnector",
    "halopsa": "connectors.halopsa.connector:HaloPsaConnector",
    "autotask": "connectors.autotask.connector:AutotaskConnector",
}


def kinds() -> frozenset[str]:
    return frozenset(_CONNECTORS)


def connector_class(kind: str) -> type[Any]:
    try:
        target = _CONNECTORS[kind]
    except KeyError as exc:
        raise KeyError(f"unknown PSA kind {kind!r}; known: {', '.join(sorted(_CONNECTORS))}") from exc
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


class Registry:
    """Builds connectors; an optional transport is handed to every one (tests, benchmarks)."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None, options: Mapping[str, Any] | None = None):
        self.transport = transport
        self.options = dict(options or {})

    def kinds(self) -> frozenset[str]:
        return kinds()

    def build(self, config: ConnectionConfig) -> PsaConnector:
        cls = connector_class(config.kind)
        return cls(config, transport=self.transport, **self.options.get(config.kind, {}))

    def capabilities(self, kind: str) -> Capabilities:
        return connector_class(kind).CAPABILITIES

    def setup_fields(self, kind: str) -> SetupFields:
        """The settings and credentials an admin fills in to add a connection of this kind."""
        return getattr(connector_class(kind), "SETUP", SetupFields())

    def admin_notes(self, kind: str) -> tuple[str, ...]:
        """What the MSP must configure in this PSA for Deskbridge to work as expected (connector's words)."""
        return tuple(getattr(connector_class(kind), "ADMIN_NOTES", ()))

    async def check(self, kind: str, settings: Mapping[str, Any], credentials: Mapping[str, Any]) -> AccountInfo:
        """Check credentials with a throwaway connector (before a connection is saved)."""
        connector = self.build(ConnectionConfig(connection_id=0, workspace_id=0, kind=kind, settings=settings,
                                                credentials=credentials))
        try:
            return await connector.check_credentials()
        finally:
            await connector.aclose()
