"""Reply drafts for a technician to review: a deterministic template draft, or an OpenAI-compatible LLM.

The template draft is the offline default and is honest by construction: every sentence is either fixed
template wording or copied verbatim from a named source (the ticket's subject, a similar resolved ticket's
resolution note), and `Draft.sentences` records which. The LLM path (llama.cpp `llama-server`, Ollama or a
hosted API, over plain httpx) is used only when the workspace allows it; what is sent is redacted first
(credentials, e-mail addresses, phone numbers, IP addresses), and any failure (timeout, HTTP error,
malformed answer, a draft citing tickets it was not given) falls back to the template draft with the
reason. Drafts are never sent by themselves: surfaces offer Approve / Edit / Discard.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import httpx

from core.ai.resolution import Resolutions
from core.redact import redact_text

log = logging.getLogger(__name__)

TEMPLATE_LABEL = "Template draft (no AI model): review before sending."
LLM_LABEL = "AI draft: review before sending."

CHECKLISTS: dict[str, tuple[str, ...]] = {
    "access": ("Which account name do you sign in with?", "What is the exact error message?",
               "Since when has this happened?"),
    "hardware": ("What is the device's name or asset tag?", "What exactly happens, and since when?",
                 "Has anything been moved, dropped or changed recently?"),
    "storage": ("Which drive, share or folder is it?", "What is the exact error message?"),
    "purchase": ("What should be ordered, and how many?", "Who approves the purchase?"),
}
GENERIC = ("What is the exact error message, if any?", "Since when has this happened?",
           "Does it affect only you, or others too?")


@dataclass(frozen=True, slots=True)
class Sentence:
    text: str
    source: str  # "template", "ticket subject", "resolution #4821", "llm"


@dataclass(frozen=True, slots=True)
class Draft:
    text: str
    kind: Literal["template", "llm"]
    label: str
    sentences: tuple[Sentence, ...] = ()
    cited: tuple[int, ...] = ()  # ticket numbers the draft draws on
    fallback_reason: str | None = None  # why the LLM was not used, when it was asked for


def template_draft(*, requester: str | None, subject: str, category: str | None,
                   resolutions: Resolutions, kb: Sequence[tuple[str, str]] = ()) -> Draft:
    """The deterministic draft: greeting, restated issue, the best resolution verbatim, the best KB article's
    matching paragraph verbatim (`kb`: (title, paragraph), best first; its link is internal and stays out),
    questions, sign-off."""
    parts: list[Sentence] = [Sentence(f"Hello {requester}," if requester else "Hello,", "template"),
                             Sentence(f"Thank you for reporting: {subject.strip()}.", "ticket subject")]
    cited: list[int] = []
    if resolutions.items:
        best = resolutions.items[0]
        ref = f"#{best.number}" if best.number is not None else f"id:{best.ticket_id}"
        parts.append(Sentence(f"A similar issue ({ref}) was resolved like this:", "template"))
        parts.append(Sentence(best.text.strip(), f"resolution {ref}"))
        if best.number is not None:
            cited.append(best.number)
    for title, paragraph in kb[:1]:
        if paragraph.strip():
            parts.append(Sentence(f'Our guide "{title.strip()}" says:', "template"))
            parts.append(Sentence(paragraph.strip(), f"kb {title.strip()}"))
    questions = CHECKLISTS.get((category or "").strip().lower(), GENERIC)
    parts.append(Sentence("To help us further, could you tell us:", "template"))
    parts.extend(Sentence(f"- {q}", "template") for q in questions)
    parts.append(Sentence("Kind regards,", "template"))
    return Draft("\n".join(s.text for s in parts), "template", TEMPLATE_LABEL, tuple(parts), tuple(cited))


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<!\w)\+?\d[\d ()/-]{7,}\d(?!\w)")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")


def redact_for_remote(text: str) -> str:
    """What may leave the building: credentials, e-mail addresses, phone numbers and IPs masked."""
    out = redact_text(text)
    out = _EMAIL.sub("[email]", out)
    out = _IPV4.sub("[ip]", out)
    return _PHONE.sub("[phone]", out)


@dataclass(frozen=True, slots=True)
class LlmConfig:
    base_url: str  # e.g. http://127.0.0.1:8080/v1 (llama-server), http://127.0.0.1:11434/v1 (Ollama)
    model: str
    api_key: str = field(default="local", repr=False)  # never logged or shown
    timeout: float = 30.0
    max_tokens: int = 500


SYSTEM = ("You draft replies for an IT service desk technician to review. Be brief and polite. Never promise "
          "timelines. Do not invent steps: use only the resolutions given, and cite the ticket ids you use "
          "like #123. Answer in the customer's language.")


def _messages(subject: str, body: str, requester: str | None, resolutions: Resolutions,
              kb: Sequence[tuple[str, str]] = ()) -> list[dict[str, str]]:
    refs = "\n".join(f"#{r.number}: {r.text}" for r in resolutions.items if r.number is not None) or "(none)"
    guides = "\n".join(f'"{title}": {paragraph}' for title, paragraph in kb) or "(none)"
    user = (f"Requester: {requester or 'unknown'}\nTicket subject: {subject}\nTicket text: {body}\n\n"
            f"Resolutions of similar resolved tickets:\n{refs}\n\nMatching knowledge-base paragraphs:\n{guides}")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": redact_for_remote(user)}]


async def llm_draft(config: LlmConfig, *, subject: str, body: str, requester: str | None, category: str | None,
                    resolutions: Resolutions, transport: httpx.AsyncBaseTransport | None = None,
                    kb: Sequence[tuple[str, str]] = ()) -> Draft:
    """A draft from the configured endpoint, or the template draft with the reason it could not be."""
    fallback = template_draft(requester=requester, subject=subject, category=category, resolutions=resolutions,
                              kb=kb)
    allowed = {r.number for r in resolutions.items if r.number is not None}
    try:
        async with httpx.AsyncClient(base_url=config.base_url.rstrip("/") + "/", timeout=config.timeout,
                                     transport=transport) as client:
            resp = await client.post("chat/completions", headers={"Authorization": f"Bearer {config.api_key}"},
                                     json={"model": config.model, "temperature": 0.2, "max_tokens": config.max_tokens,
                                           "messages": _messages(subject, body, requester, resolutions, kb)})
        resp.raise_for_status()
        content = resp.json()["choices"][0]["message"]["content"]
        if not isinstance(content, str) or not content.strip():
            raise ValueError("empty answer")
    except httpx.TimeoutException:
        return _fell_back(fallback, f"the LLM endpoint did not answer within {config.timeout:g} s")
    except httpx.HTTPStatusError as exc:
        return _fell_back(fallback, f"the LLM endpoint answered HTTP {exc.response.status_code}")
    except httpx.HTTPError as exc:
        return _fell_back(fallback, f"the LLM endpoint could not be reached ({type(exc).__name__})")
    except (ValueError, KeyError, IndexError, TypeError):
        return _fell_back(fallback, "the LLM endpoint's answer was not a chat completion")
    cited = tuple(int(n) for n in re.findall(r"#(\d+)", content))
    if any(n not in allowed for n in cited):
        return _fell_back(fallback, "the AI draft cited tickets it was not given")
    text = content.strip()
    return Draft(text, "llm", LLM_LABEL, (Sentence(text, "llm"),), cited)


def _fell_back(draft: Draft, reason: str) -> Draft:
    log.info("reply draft fell back to the template: %s", reason)
    return Draft(draft.text, draft.kind, draft.label, draft.sentences, draft.cited, reason)


_TEMPLATE_LINE = re.compile(r"(Hello( [^,\n]+)?,|A similar issue \((#|id:)\d+\) was resolved like this:|"
                            r"Our guide \"[^\"\n]+\" says:|To help us further, could you tell us:|Kind regards,|- .+\?)")


def traces(draft: Draft, sources: Sequence[str]) -> bool:
    """The rubric of a template draft: its text is exactly its sentences, each one either template wording
    or taken verbatim from one of `sources` (the ticket subject, the resolution notes and KB paragraphs it was
    given)."""
    if "\n".join(s.text for s in draft.sentences) != draft.text:
        return False
    given = [src.strip() for src in sources if src.strip()]
    for s in draft.sentences:
        if s.source == "template":
            ok = _TEMPLATE_LINE.fullmatch(s.text) is not None
        elif s.source == "ticket subject":
            ok = any(s.text == f"Thank you for reporting: {src}." for src in given)
        else:
            ok = s.text in given
        if not ok:
            return False
    return True
