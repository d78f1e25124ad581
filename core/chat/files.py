"""Files a technician drops into a ticket's chat thread, as surfaces hand them to core.

A surface describes each file (`ChatFile`: name, type, declared size, where its bytes are) and knows how
to download it; core decides what happens: whether the file may go to the ticket's PSA at all, checks
the PSA's size cap against the declared size before anything is downloaded and against the bytes that
actually arrive, and words every refusal so the technician knows what to do instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from core.chat import grammar as c
from core.errors import InvalidInput, NotFound


@dataclass(frozen=True, slots=True)
class ChatFile:
    """A file a technician dropped into a ticket's thread, as the chat platform describes it.

    `size` is what the platform declares (checked before any download). `fetch(limit)` downloads the
    file and returns its bytes, or None once more than `limit` bytes arrived (the download is stopped
    there, so a wrong declared size never fills memory); it raises DeskbridgeError when the platform does
    not hand the file over. `stored`: "hosted" (the platform holds the bytes), "external" (a link to a
    file kept elsewhere, e.g. Google Drive), "deleted", or "other" (a platform document, not a file).
    """

    name: str
    content_type: str
    size: int | None
    fetch: Callable[[int], Awaitable[bytes | None]]
    stored: str = "hosted"


FILE_ELSEWHERE_HINT = "Attach it in the PSA directly, or paste a link to it in the thread as a note."


def files_only(text: str) -> bool:
    """Files with no text, or with only a visibility marker (`!public`): the files are still written."""
    words = (text or "").split()
    return not words or (len(words) == 1 and words[0].lower() in c.PUBLIC_MARKERS + c.INTERNAL_MARKERS)


def _size(n: int) -> str:
    if n < 1_048_576:
        return f"{max(1, -(-n // 1024))} KB"
    return f"{n / 1_048_576:.1f}".removesuffix(".0") + " MB"


async def fetch_file(f: ChatFile, limit: int | None) -> bytes:
    """The file's bytes, or the error saying why it cannot go to the PSA (checked before downloading)."""
    if f.stored == "external":
        raise InvalidInput(f"{f.name} is a link to a file stored outside the chat, so there is nothing to copy "
                           "into the ticket.", hint=FILE_ELSEWHERE_HINT)
    if f.stored == "other":
        raise InvalidInput(f"{f.name} is not a file Deskbridge can copy into the ticket (it is a document of the "
                           "chat itself).", hint=FILE_ELSEWHERE_HINT)
    if f.stored != "hosted":
        raise NotFound(f"{f.name} is no longer available (it was deleted), so it was not attached.",
                       hint="Share it again, or attach it in the PSA directly.")
    if limit is None:
        raise InvalidInput(f"{f.name} was not attached: this ticket's PSA does not accept attachments from "
                           "Deskbridge.", hint="Attach it in the PSA directly.")
    if f.size is not None and f.size > limit:
        raise InvalidInput(f"{f.name} is {_size(f.size)}; the PSA accepts files up to {_size(limit)}, so it was "
                           "not attached.", hint=FILE_ELSEWHERE_HINT)
    content = await f.fetch(limit)
    if content is None or len(content) > limit:
        raise InvalidInput(f"{f.name} is larger than the {_size(limit)} the PSA accepts (more than its stated "
                           "size), so its download was stopped and it was not attached.", hint=FILE_ELSEWHERE_HINT)
    if not content:
        raise InvalidInput(f"{f.name} is empty, so it was not attached.", hint="Share a file with content.")
    return content
