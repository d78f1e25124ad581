"""manifests/slack/manifest.yaml is valid against Slack's official manifest schema (no network)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from bot.slack.app import BOT_SCOPES
from bot.slack.listeners import SHORTCUT_ID

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = Path("/work/shared/specs/slack/manifest.schema.1.0.0.json")
LOCAL_SCHEMA = ROOT / "tests" / "bot" / "slack" / "manifest.schema.1.0.0.json"


@pytest.fixture(scope="module")
def validator():
    path = LOCAL_SCHEMA if LOCAL_SCHEMA.exists() else SCHEMA
    schema = json.loads(path.read_text())
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def manifest():
    return yaml.safe_load((ROOT / "manifests" / "slack" / "manifest.yaml").read_text())


def test_manifest_is_valid(validator, manifest):
    errors = sorted(validator.iter_errors(manifest), key=str)
    assert errors == []


def test_the_schema_really_checks(validator, manifest):
    bad = copy.deepcopy(manifest)
    bad["features"]["slash_commands"][0]["command"] = "tickets-without-slash-and-far-too-long-for-slack"
    bad["display_information"]["name"] = "x" * 40
    assert len(list(validator.iter_errors(bad))) >= 2


def test_manifest_matches_the_app(manifest):
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(BOT_SCOPES)
    assert {c["command"] for c in manifest["features"]["slash_commands"]} == {"/tickets", "/ticket", "/deskbridge"}
    assert [s["callback_id"] for s in manifest["features"]["shortcuts"]] == [SHORTCUT_ID]
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"message.channels", "message.groups", "app_home_opened", "channel_shared", "channel_unshared"} <= events
    assert "message.im" not in events and "im:history" not in BOT_SCOPES  # no ticket threads live in DMs
    # least privilege: nothing that posts where the bot was not invited, impersonates, joins or writes files
    # (files:read is there to copy files dropped into ticket threads to the PSA)
    assert not {"chat:write.public", "chat:write.customize", "files:write", "channels:join"} & set(BOT_SCOPES)
    assert "files:read" in BOT_SCOPES
    # the only user scopes are Sign in with Slack's (who the admin is; no API call on the user's behalf)
    assert sorted(manifest["oauth_config"]["scopes"]["user"]) == ["email", "openid", "profile"]
    assert any(u.endswith("/admin/oidc/slack/callback") for u in manifest["oauth_config"]["redirect_urls"])
    from bot.admin.oidc import slack_provider

    asked = slack_provider("https://slack.com", "id", "secret").scope.split()
    assert set(asked) <= set(manifest["oauth_config"]["scopes"]["user"])  # what sign-in asks for, the app declares
