"""The bot's own credentials: the outbound token from the stand-in's Entra endpoint (secret or certificate),
cached; clear errors that never carry a secret; signing keys re-fetched when Microsoft rotates them."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from bot.main import build
from bot.teams.auth import InboundVerifier, KeySet, TokenRefused
from bot.teams.tokens import Certificate, OutboundTokens, TeamsTokenError
from tests.bot.teams.conftest import APP_ID, SECRET, TENANT, teams_settings
from tests.fakes.teams_connector import ISSUER, KID

SCOPE = "https://api.botframework.com/.default"


def self_signed(tmp_path) -> tuple[Certificate, object]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "deskbridge-bot")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    path = tmp_path / "bot.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return Certificate(path), key


async def test_secret_token_is_cached(fake_bf):
    async with httpx.AsyncClient() as http:
        tokens = OutboundTokens(app_id=APP_ID, tenant_id=TENANT, login_url=fake_bf.login_url, http=http,
                                secret=SecretStr(SECRET))
        first = await tokens(SCOPE, None)
        assert await tokens(SCOPE, None) == first
    assert len(fake_bf.token_requests) == 1
    assert fake_bf.token_requests[0]["scope"] == SCOPE


async def test_certificate_token(fake_bf, tmp_path):
    cert, key = self_signed(tmp_path)
    fake_bf.register_certificate(cert.x5t_s256, key.public_key())
    async with httpx.AsyncClient() as http:
        tokens = OutboundTokens(app_id=APP_ID, tenant_id=TENANT, login_url=fake_bf.login_url, http=http,
                                certificate=cert)
        assert await tokens(SCOPE, None)
        (tmp_path / "x").mkdir()
        other, _ = self_signed(tmp_path / "x")  # a certificate the app registration does not have
        refused = OutboundTokens(app_id=APP_ID, tenant_id=TENANT, login_url=fake_bf.login_url, http=http,
                                 certificate=other)
        with pytest.raises(TeamsTokenError, match="AADSTS700027"):
            await refused(SCOPE, None)


async def test_a_wrong_secret_or_tenant_says_what_to_check_and_never_the_secret(fake_bf):
    async with httpx.AsyncClient() as http:
        bad = OutboundTokens(app_id=APP_ID, tenant_id=TENANT, login_url=fake_bf.login_url, http=http,
                             secret=SecretStr("wrong-secret-value"))
        with pytest.raises(TeamsTokenError) as err:
            await bad(SCOPE, None)
        assert "AADSTS7000215" in str(err.value) and "DESKBRIDGE_TEAMS_APP_ID" in str(err.value)
        assert "wrong-secret-value" not in str(err.value)
        other_tenant = OutboundTokens(app_id=APP_ID, tenant_id="common-ish", login_url=fake_bf.login_url,
                                      http=http, secret=SecretStr(SECRET))
        with pytest.raises(TeamsTokenError, match="DESKBRIDGE_TEAMS_TENANT_ID"):
            await other_tenant(SCOPE, None)


def test_a_bad_certificate_file_is_named(tmp_path):
    (tmp_path / "bad.pem").write_text("not a pem")
    with pytest.raises(TeamsTokenError, match="DESKBRIDGE_TEAMS_CERTIFICATE_FILE"):
        Certificate(tmp_path / "bad.pem")


async def test_the_sdks_own_client_secret_variable_is_refused(fake_bf, db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIENT_SECRET", "from-the-environment")
    with pytest.raises(TeamsTokenError, match="CLIENT_SECRET"):
        build(teams_settings(db_url, tmp_path, fake_bf))


async def test_rotated_keys_are_fetched_again_but_not_on_every_bad_kid(fake_bf):
    now = [0.0]
    async with httpx.AsyncClient() as http:
        keys = KeySet(fake_bf.openid_url, http, clock=lambda: now[0])
        verifier = InboundVerifier(app_id=APP_ID, issuer=ISSUER, keys=keys)
        url = fake_bf.service_url
        await verifier.verify("Bearer " + fake_bf.sign(service_url=url), service_url=url, channel_id="msteams")
        assert fake_bf.key_fetches == 1
        old = fake_bf.key
        fake_bf.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # Microsoft rotates
        now[0] += 10
        with pytest.raises(TokenRefused):  # within a minute of the last fetch: no new fetch for unknown kids
            await verifier.verify("Bearer " + fake_bf.sign(service_url=url, kid="k2"), service_url=url,
                                  channel_id="msteams")
        assert fake_bf.key_fetches == 1
        now[0] += 120
        # the stand-in publishes its new key under the same kid; a token signed with the old key now fails
        with pytest.raises(TokenRefused):
            await verifier.verify("Bearer " + fake_bf.sign(service_url=url, key=old, kid="k2"), service_url=url,
                                  channel_id="msteams")
        assert fake_bf.key_fetches == 2
        claims = await verifier.verify("Bearer " + fake_bf.sign(service_url=url, kid=KID), service_url=url,
                                       channel_id="msteams")
        assert claims["aud"] == APP_ID


async def test_a_key_not_endorsed_for_the_channel_is_refused(fake_bf):
    async with httpx.AsyncClient() as http:
        verifier = InboundVerifier(app_id=APP_ID, issuer=ISSUER, keys=KeySet(fake_bf.openid_url, http))
        url = fake_bf.service_url
        with pytest.raises(TokenRefused, match="endorsed"):
            await verifier.verify("Bearer " + fake_bf.sign(service_url=url), service_url=url, channel_id="skype")


@pytest.mark.parametrize("cloud, issuer, login", [
    ("public", "https://api.botframework.com", "https://login.microsoftonline.com"),
    ("usgov", "https://api.botframework.us", "https://login.microsoftonline.us"),
    ("china", "https://api.botframework.azure.cn", "https://login.partner.microsoftonline.cn"),
])
def test_sovereign_clouds_and_stand_in_overrides(cloud, issuer, login, tmp_path):
    from bot.settings import Settings
    from bot.teams.app import cloud_for

    s = Settings(teams_cloud=cloud, secret_key_file=tmp_path / "k")
    c = cloud_for(s)
    assert (c.token_issuer, c.login_endpoint) == (issuer, login)
    o = cloud_for(Settings(teams_cloud=cloud, teams_openid_metadata_url="http://127.0.0.1:1/v1/meta",
                           teams_login_url="http://127.0.0.1:1/", secret_key_file=tmp_path / "k"))
    assert o.openid_metadata_url == "http://127.0.0.1:1/v1/meta" and o.login_endpoint == "http://127.0.0.1:1"
    assert o.token_issuer == issuer  # the issuer stays the cloud's unless overridden too
