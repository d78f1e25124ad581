"""Reply drafts: the template draft traces to its sources (rubric on 20 hand-written tickets); the LLM path
over a mock OpenAI-compatible transport succeeds, or falls back cleanly on timeout, 500, malformed answers
and invented citations; nothing personal or secret leaves in the request."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from core.ai.drafts import LlmConfig, llm_draft, redact_for_remote, template_draft, traces
from core.ai.resolution import Resolutions, SuggestedResolution

D = datetime(2026, 3, 12, tzinfo=UTC)

# (subject, category, resolution note of the best similar resolved ticket or None)
FIXTURES = [
    ("Cannot log in to Outlook after password change", "Access", "Signed out of all Office apps and signed in again."),
    ("Account locked out", "Access", "Unlocked the account in AD and reset the lockout counter."),
    ("MFA prompt never arrives", "Access", None),
    ("Laptop screen flickers", "Hardware", "Updated the display driver to the vendor's latest version."),
    ("Printer on floor 2 jams", "Hardware", "Cleared the tray and replaced the worn pickup roller."),
    ("Docking station not charging", "Hardware", None),
    ("Shared drive S: is full", "Storage", "Archived 2019 project folders to cold storage."),
    ("OneDrive not syncing", "Storage", "Reset the OneDrive client with onedrive.exe /reset."),
    ("Need a new headset", "Purchase", "Ordered via the standard catalogue, item HS-200."),
    ("Quote for 5 laptops", "Purchase", None),
    ("VPN drops every hour", None, "Raised the VPN keepalive to 60 s.\nUpdated the client to 5.2."),
    ("Teams calls choppy", None, "Moved the user to the 5 GHz Wi-Fi network."),
    ("New starter needs accounts", "Access", "Created the accounts from the onboarding template."),
    ("Keyboard keys sticking", "Hardware", None),
    ("Backup job failed overnight", "Storage", "Re-ran the job after freeing space on the NAS."),
    ("Software licence renewal", "Purchase", "Renewed through the reseller portal."),
    ("Email bounces to external domain", None, "Fixed the SPF record to include the mail relay."),
    ("Cannot print PDFs", "Hardware", "Reinstalled the printer driver package."),
    ("Folder permissions for finance", "Access", None),
    ("Slow PC at reception", None, "Replaced the HDD with an SSD."),
]


def resolutions(note: str | None, number: int = 4821) -> Resolutions:
    if note is None:
        return Resolutions((), False)
    return Resolutions((SuggestedResolution(1, number, note, 0.71, D, "Ana"),), False)


@pytest.mark.parametrize(("subject", "category", "note"), FIXTURES)
def test_every_sentence_of_a_template_draft_traces_to_a_source(subject, category, note):
    draft = template_draft(requester="Sam", subject=subject, category=category, resolutions=resolutions(note))
    sources = [subject] + ([note] if note else [])
    assert traces(draft, sources)
    assert draft.kind == "template" and "review before sending" in draft.label
    if note:
        assert note in draft.text and draft.cited == (4821,) and "(#4821)" in draft.text
    else:
        assert "similar issue" not in draft.text and draft.cited == ()


def test_the_rubric_catches_a_sentence_with_no_source():
    draft = template_draft(requester=None, subject="Printer jams", category=None, resolutions=resolutions("Cleared it."))
    assert not traces(draft, ["Printer jams"])  # the resolution is not among the sources given


CONFIG = LlmConfig(base_url="http://llm.test/v1", model="tiny", api_key="sk-live-SECRET-1234", timeout=0.5)


def completion(text: str) -> dict:
    return {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant",
            "content": text}, "finish_reason": "stop"}]}


async def ask(handler, note: str | None = "Raised the VPN keepalive to 60 s."):
    return await llm_draft(CONFIG, subject="VPN drops", body="user sam@acme.example, 10.1.2.3, password: hunter2",
                           requester="Sam", category=None, resolutions=resolutions(note, 9001),
                           transport=httpx.MockTransport(handler))


async def test_success_uses_the_answer_and_sends_only_redacted_text():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["auth"] = request.headers["authorization"]
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, json=completion("Hi Sam, as in #9001 we raised the keepalive."))

    draft = await ask(handler)
    assert draft.kind == "llm" and draft.fallback_reason is None and draft.cited == (9001,)
    assert seen["url"] == "http://llm.test/v1/chat/completions" and seen["auth"] == "Bearer sk-live-SECRET-1234"
    sent = json.dumps(seen["body"])
    assert "hunter2" not in sent and "sam@acme.example" not in sent and "10.1.2.3" not in sent
    assert "#9001: Raised the VPN keepalive" in sent


@pytest.mark.parametrize(("handler", "reason"), [
    (lambda r: (_ for _ in ()).throw(httpx.ReadTimeout("slow", request=r)), "did not answer within 0.5 s"),
    (lambda r: httpx.Response(500, text="boom"), "HTTP 500"),
    (lambda r: httpx.Response(200, text="<html>not json"), "not a chat completion"),
    (lambda r: httpx.Response(200, json={"choices": []}), "not a chat completion"),
    (lambda r: httpx.Response(200, json=completion("  ")), "not a chat completion"),
    (lambda r: httpx.Response(200, json=completion("Fixed as in #777.")), "cited tickets it was not given"),
    (lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused", request=r)), "could not be reached"),
])
async def test_failures_fall_back_to_the_template_draft_with_the_reason(handler, reason, caplog):
    draft = await ask(handler)
    assert draft.kind == "template" and reason in (draft.fallback_reason or "")
    assert "Raised the VPN keepalive to 60 s." in draft.text  # still a useful, sourced draft
    assert "sk-live-SECRET" not in caplog.text


def test_redaction_masks_credentials_emails_phones_and_ips():
    out = redact_for_remote("call +44 20 7946 0958, mail a.b@c.example, host 192.168.0.10, api_key=abc123")
    assert out == "call [phone], mail [email], host [ip], api_key=[redacted]"


def test_a_template_draft_quotes_the_best_kb_paragraph_verbatim_and_never_its_link():
    paragraph = "Set both IKE lifetimes to 28800 s and enable dead peer detection with a keepalive of 60 s."
    draft = template_draft(requester="Sam", subject="VPN drops", category=None, resolutions=resolutions(None),
                           kb=[("VPN tunnel disconnects", paragraph), ("Second guide", "Not used.")])
    assert 'Our guide "VPN tunnel disconnects" says:' in draft.text and paragraph in draft.text
    assert "Not used." not in draft.text and "http" not in draft.text
    assert traces(draft, ["VPN drops", paragraph])
    assert not traces(draft, ["VPN drops"])  # the paragraph must be one of the sources given


async def test_the_llm_is_given_the_kb_paragraph_too():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, json=completion("Hi Sam, please restart the client."))

    await llm_draft(CONFIG, subject="VPN drops", body="it drops", requester="Sam", category=None,
                    resolutions=resolutions(None), kb=[("VPN tunnel disconnects", "Raise the keepalive to 60 s.")],
                    transport=httpx.MockTransport(handler))
    assert '\\"VPN tunnel disconnects\\": Raise the keepalive to 60 s.' in json.dumps(seen["body"])
