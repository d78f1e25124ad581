"""All configuration, in one pydantic-settings class (prefix DESKBRIDGE_, `.env` supported).

Built once, in bot/main.py. Nothing reads settings at import time.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DESKBRIDGE_", env_file=".env", env_file_encoding="utf-8",
                                      extra="ignore")

    # Storage
    database_url: str = Field("sqlite:///./deskbridge.db", description="SQLite file or PostgreSQL URL")
    database_read_threads: int = Field(4, ge=0, le=64, description="SQLite: reader threads for one-hop reads of "
                                       "queue pages and SLA figures (0: every read through the async driver)")
    auto_migrate: bool = Field(True, description="Apply database migrations on start")

    # Credentials at rest (AES-GCM). Without a key, a local key file is created (single-host installs).
    secret_key: SecretStr | None = Field(None, description="Base64 32-byte key encrypting PSA credentials")
    secret_keys_old: list[SecretStr] = Field(default_factory=list, description="Previous keys, for rotation")
    secret_key_file: Path = Field(Path(".deskbridge/secret.key"), description="Key file used when no key is set")

    # Web server
    host: str = Field("127.0.0.1", description="Address `serve` listens on")
    port: int = Field(8080, ge=0, le=65535, description="Port `serve` listens on (0: one the system picks)")
    public_url: str | None = Field(None, description="External base URL (OAuth redirects, webhooks)")

    # Logging
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING, ERROR")
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="auto: short coloured lines on a terminal, JSON lines otherwise; or json, text")
    log_levels: str = Field("", description="Other libraries' loggers (WARNING by default), e.g. apscheduler=INFO")
    quiet_work: bool = Field(True, description="`serve` runs older GC generations and kept cards' rebuilds when no "
                             "request is in flight (bot/idle.py); false: CPython's collector and builds on demand")
    loop_trace_file: Path | None = Field(
        None, description="Benches only: `serve` writes where its event loop spent its time here (bot/looptrace.py)")

    # Tenancy: the workspace used by single-workspace installs and the console
    workspace_slug: str = Field("default", description="Workspace used in single-workspace mode")
    workspace_name: str = Field("My MSP", description="Display name of that workspace")
    workspace_timezone: str = Field("UTC", description="Its time zone when Deskbridge creates it (IANA, e.g. "
                                    "America/New_York); change it later with `deskbridge workspace timezone`")

    # Built-in sandbox PSA (used when no PSA connection is configured)
    sandbox: Literal["auto", "on", "off"] = Field("auto", description="auto: sandbox when no PSA is configured")
    sandbox_seed: int = Field(42, description="Seed of the sandbox's generated data")

    # Background work
    instance_id: str = Field(default_factory=_default_instance_id, description="Name of this instance in leases")
    run_scheduler: bool = Field(True, description="Run scheduled jobs (sync, SLA, housekeeping) in `serve`")
    run_outbox_worker: bool = Field(True, description="Run the outbox worker in `serve`")
    refresh_worker: Literal["process", "inline"] = Field(
        "process", description="process: PSA callbacks' ticket re-reads run in a worker process started by `serve` "
        "(bot/refresh_worker.py), off the chat side's core; inline: in the app's own process (tests, small installs)")
    sync_interval_seconds: int = Field(60, ge=5, description="Incremental sync period per connection")
    picklist_interval_seconds: int = Field(3600, ge=60, description="Picklist refresh period")
    reconcile_interval_seconds: int = Field(
        600, ge=60, description="Reconcile period: ids only, so a ticket deleted in the PSA leaves the queue within "
                                "minutes (writes that meet a deleted ticket check it at once)")
    outbox_poll_seconds: float = Field(1.0, gt=0, description="Outbox idle poll period")
    outbox_concurrency: int = Field(4, ge=1, le=64, description="Outbox delivery slots per worker process")
    psa_request_timeout_seconds: float = Field(
        30.0, gt=0, description="Total timeout of a PSA request (connectors); the outbox settle delay exceeds it")
    outbox_settle_seconds: float = Field(
        45.0, gt=0, description="Wait before looking for an ambiguous write's marker (> client timeout + margin)")
    outbox_lease_seconds: float = Field(
        30.0, ge=1, description="Claim lease of an outbox op, renewed while it works: a dead worker's ops are "
                                "taken over this long after it stops")
    outbox_backoff_base_seconds: float = Field(2.0, gt=0, description="First retry's full-jitter window")
    outbox_backoff_cap_seconds: float = Field(600.0, gt=0, description="Largest retry window")
    outbox_breaker_failures: int = Field(5, ge=1, description="Consecutive PSA failures that pause a connection")
    outbox_breaker_reset_seconds: float = Field(30.0, gt=0, description="Pause before probing a failing PSA again")

    # REST API (/api/msp-portal)
    api_rate_per_second: float = Field(20.0, gt=0, description="Requests per second per API key (token bucket)")
    api_rate_burst: int = Field(60, ge=1, description="Burst size of each API key's token bucket")
    api_max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest accepted request body")

    # AI reply drafts (core/ai/drafts.py): an OpenAI-compatible endpoint; unset = template drafts only
    llm_base_url: str | None = Field(None, description="e.g. http://127.0.0.1:8080/v1 (llama-server, Ollama)")
    llm_model: str = Field("local", description="Model name sent to the LLM endpoint")
    llm_api_key: SecretStr | None = Field(None, description="Bearer key of the LLM endpoint (any text for local)")
    llm_timeout: float = Field(30.0, gt=0, le=300, description="Seconds to wait for a draft")

    # Slack
    slack_bot_token: SecretStr | None = Field(None, description="xoxb- token (single-workspace mode)")
    slack_signing_secret: SecretStr | None = Field(None, description="Verifies Slack requests")
    slack_client_id: str | None = Field(None, description="OAuth install (multi-workspace)")
    slack_client_secret: SecretStr | None = Field(None, description="OAuth install (multi-workspace)")
    slack_app_token: SecretStr | None = Field(None, description="xapp- token, enables Socket Mode")
    slack_api_url: str = Field("https://slack.com/api/", description="Slack Web API base (tests, GovSlack)")

    # Microsoft Teams (bot/teams): one single-tenant Azure Bot registration per MSP
    teams_app_id: str | None = Field(None, description="The bot's Microsoft App ID (Entra application id)")
    teams_app_secret: SecretStr | None = Field(None, description="Client secret of that app registration")
    teams_certificate_file: Path | None = Field(
        None, description="PEM file with the app's certificate and private key (instead of a secret)")
    teams_tenant_id: str | None = Field(None, description="Entra tenant of the bot registration (single-tenant)")
    teams_single_tenant: bool = Field(True, description="Single-tenant bot: only activities of teams_tenant_id")
    teams_cloud: Literal["public", "usgov", "usgovdod", "china"] = Field(
        "public", description="Which Microsoft cloud the bot lives in")
    teams_openid_metadata_url: str | None = Field(
        None, description="Override of the Bot Framework OpenID metadata URL (signing keys; a local stand-in)")
    teams_token_issuer: str | None = Field(None, description="Override of the expected inbound token issuer")
    teams_login_url: str | None = Field(
        None, description="Override of the Entra login base URL the outbound token is requested from")
    teams_write_hold_seconds: float = Field(
        2.2, ge=0, le=4.5, description="How long a Teams write click's answer waits for the write to be accepted "
        "before answering 'saving…' and following up with the outcome (bot/teams/hold.py); 0: wait for it always")
    teams_service_url: str = Field("https://smba.trafficmanager.net/teams/",
                                   description="Bot Connector base used when no conversation names its own")

    # Microsoft 365 tenant context (issue 23): one multi-tenant Entra app each customer's admin consents to
    m365_client_id: str | None = Field(None, description="Application (client) id of the multi-tenant Entra app")
    m365_client_secret: SecretStr | None = Field(None, description="Client secret of that app (never shown)")
    m365_graph_url: str = Field("https://graph.microsoft.com/v1.0", description="Microsoft Graph base (tests)")
    m365_login_url: str = Field("https://login.microsoftonline.com", description="Entra login base (tests)")
    m365_consent_redirect_uri: str | None = Field(
        None, description="Where the admin-consent page returns to (must be a redirect URI of the app)")

    # Admin pages' "Sign in with Slack / Microsoft" (bot/admin/oidc.py). Each defaults to the Slack app's
    # OAuth client (slack_client_id) or the Teams bot's Entra app (teams_app_id); the redirect URI to register
    # with the provider is <public_url>/admin/oidc/slack/callback (or /microsoft/callback).
    admin_slack_client_id: str | None = Field(None, description="Slack app client id for admin sign-in")
    admin_slack_client_secret: SecretStr | None = Field(None, description="Its client secret (never shown)")
    slack_oidc_url: str = Field("https://slack.com", description="Slack OpenID Connect base (issuer; tests)")
    admin_microsoft_client_id: str | None = Field(None, description="Entra app (client) id for admin sign-in")
    admin_microsoft_client_secret: SecretStr | None = Field(None, description="Its client secret (never shown)")
    admin_microsoft_tenant: str | None = Field(
        None, description="Entra tenant admins sign in from (default: teams_tenant_id, else 'organizations')")

    @field_validator("teams_tenant_id")
    @classmethod
    def _tenant(cls, v: str | None) -> str | None:
        v = (v or "").strip() or None
        if v is not None and v.lower() in {"common", "organizations", "botframework.com"}:
            raise ValueError("teams_tenant_id must be your own tenant id (a GUID), not 'common': single-tenant "
                             "bots take their token from their own tenant")
        return v

    @field_validator("database_url")
    @classmethod
    def _url(cls, v: str) -> str:
        v = v.strip()
        if not (v.startswith("sqlite") or v.startswith("postgres")):
            raise ValueError("database_url must be a sqlite:/// or postgresql:// URL")
        return v

    @field_validator("log_levels")
    @classmethod
    def _log_levels(cls, v: str) -> str:
        from bot.logging import parse_levels  # the one parser of "logger=LEVEL,..."

        parse_levels(v)
        return v

    @property
    def teams_enabled(self) -> bool:
        return self.teams_app_id is not None and (
            self.teams_app_secret is not None or self.teams_certificate_file is not None)

    def teams_problems(self) -> list[str]:
        """What is missing for Teams to start, one line per setting (empty when Teams is off or complete)."""
        if not self.teams_enabled:
            return []
        out = []
        if self.teams_single_tenant and not self.teams_tenant_id:
            out.append("DESKBRIDGE_TEAMS_TENANT_ID: a single-tenant bot needs its tenant id (Azure portal -> "
                       "the bot's app registration -> Directory (tenant) ID), or the token request goes to the "
                       "wrong tenant")
        if self.teams_app_secret is not None and self.teams_certificate_file is not None:
            out.append("DESKBRIDGE_TEAMS_APP_SECRET and DESKBRIDGE_TEAMS_CERTIFICATE_FILE: set one of them, not both")
        return out

    @property
    def slack_enabled(self) -> bool:
        # Socket Mode (an app token) receives over its own WebSocket: no signing secret is needed then.
        return (self.slack_signing_secret is not None or self.slack_app_token is not None) and (
            self.slack_bot_token is not None or self.slack_client_id is not None
        )
