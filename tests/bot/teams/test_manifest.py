"""manifests/teams: valid against the Teams manifest schema v1.29 (no network); the package an admin uploads
carries this bot's id, host, icons of the right size, the command list and the RSC permission."""

from __future__ import annotations

import copy
import json
import struct
import zipfile
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.teams.manifest import ManifestError, build, package, template

SCHEMA = json.loads((Path(__file__).parent / "teams-manifest-v1.29.schema.json").read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)
APP_ID = "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b"


def errors(m: dict) -> list[str]:
    return [e.message for e in VALIDATOR.iter_errors(m)]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_template_and_built_manifest_are_valid():
    assert errors(template()) == []
    m = build(APP_ID, "https://desk.acme-msp.example")
    assert errors(m) == []
    assert m["id"] == m["bots"][0]["botId"] == m["webApplicationInfo"]["id"] == APP_ID
    assert m["validDomains"] == ["desk.acme-msp.example"]
    assert "deskbridge.example.com" not in json.dumps(m)


def test_the_schema_really_checks():
    bad = copy.deepcopy(template())
    bad["bots"][0]["scopes"] = ["everywhere"]
    assert errors(bad)
    bad = copy.deepcopy(template())
    del bad["icons"]
    assert errors(bad)


def test_commands_and_rsc():
    m = template()
    titles = {c["title"] for cl in m["bots"][0]["commandLists"] for c in cl["commands"]}
    assert {"tickets mine", "ticket", "help", "link", "bind customer", "my queue"} <= titles
    lists = {tuple(cl["scopes"]): [c["title"] for c in cl["commands"]] for cl in m["bots"][0]["commandLists"]}
    assert lists[("personal",)][0] == "my queue"  # the personal chat is the technician's own queue
    assert "bind customer" not in lists[("personal",)]  # binding is for channels
    tabs = {t["entityId"]: t["scopes"] for t in m["staticTabs"]}
    assert tabs == {"conversations": ["personal"], "about": ["personal"]}  # the personal app opens on the chat
    rsc = m["authorization"]["permissions"]["resourceSpecific"]
    assert {"name": "ChannelMessage.Read.Group", "type": "Application"} in rsc


@pytest.mark.parametrize("app_id, url, what", [
    ("not-a-guid", "https://x.example", "GUID"), (APP_ID, "http://x.example", "https://"), (APP_ID, "", "https://"),
])
def test_bad_values_say_what_to_set(app_id, url, what):
    with pytest.raises(ManifestError, match=what):
        build(app_id, url)


def test_package_zip(tmp_path):
    out = package(APP_ID, "https://desk.acme-msp.example", tmp_path / "app.zip", version="1.2.3")
    with zipfile.ZipFile(out) as z:
        assert sorted(z.namelist()) == ["color.png", "manifest.json", "outline.png"]
        m = json.loads(z.read("manifest.json"))
        assert m["version"] == "1.2.3" and errors(m) == []
        assert png_size(z.read("color.png")) == (192, 192)
        assert png_size(z.read("outline.png")) == (32, 32)


def test_cli_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DESKBRIDGE_TEAMS_APP_ID", APP_ID)
    monkeypatch.setenv("DESKBRIDGE_PUBLIC_URL", "https://desk.acme-msp.example")
    result = CliRunner().invoke(cli, ["teams", "package", "--out", str(tmp_path / "p.zip")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p.zip").exists() and "Upload" in result.output
    monkeypatch.delenv("DESKBRIDGE_PUBLIC_URL")
    result = CliRunner().invoke(cli, ["teams", "package", "--out", str(tmp_path / "q.zip")])
    assert result.exit_code == 1 and "DESKBRIDGE_PUBLIC_URL" in result.output
