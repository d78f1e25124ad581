"""The Teams app package an admin uploads: manifests/teams/manifest.json filled in for this bot, plus icons.

The checked-in manifest is a complete example (placeholder GUID and host); `package` puts in the bot's app id
(its Microsoft App ID) and the public host, and zips manifest.json, color.png and outline.png at the root, as
Teams expects. The manifest asks for `ChannelMessage.Read.Group` (resource-specific consent, granted by the
team owner on install) so replies in a ticket's thread reach the bot without an @mention; without it only
messages that mention @Deskbridge arrive.
"""

from __future__ import annotations

import copy
import json
import re
import zipfile
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000"
PLACEHOLDER_HOST = "deskbridge.example.com"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class ManifestError(ValueError):
    """A value the manifest cannot take; the message says what to set."""


def _template_dir() -> Path:
    here = Path(__file__).resolve().parents[2] / "manifests" / "teams"
    if here.exists():
        return here
    return Path(str(files("bot"))).parent / "manifests" / "teams"  # pragma: no cover - installed elsewhere


def template() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((_template_dir() / "manifest.json").read_text())
    return data


def build(app_id: str, public_url: str, *, version: str = "1.0.0") -> dict[str, Any]:
    """The manifest for this bot registration, served at `public_url`."""
    if not _GUID.match(app_id or ""):
        raise ManifestError("DESKBRIDGE_TEAMS_APP_ID must be the bot's Microsoft App ID (a GUID, from the Azure "
                            "Bot resource -> Configuration).")
    host = urlparse(public_url or "").hostname
    if not host or not (public_url or "").startswith("https://"):
        raise ManifestError("DESKBRIDGE_PUBLIC_URL must be the https:// address Teams reaches Deskbridge at, e.g. "
                            "https://deskbridge.example.net.")
    m = copy.deepcopy(template())
    m["id"] = app_id
    m["version"] = version
    for bot in m["bots"]:
        bot["botId"] = app_id
    m["validDomains"] = [host]
    m["webApplicationInfo"] = {"id": app_id, "resource": f"api://{host}/{app_id}"}
    text = json.dumps(m).replace(PLACEHOLDER_HOST, host)
    out: dict[str, Any] = json.loads(text)
    return out


def package(app_id: str, public_url: str, out: Path, *, version: str = "1.0.0") -> Path:
    """Write the zip an admin uploads (Teams admin center -> Manage apps -> Upload)."""
    manifest = build(app_id, public_url, version=version)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", json.dumps(manifest, indent=2))
        for icon in ("color.png", "outline.png"):
            z.write(_template_dir() / icon, icon)
    return out
