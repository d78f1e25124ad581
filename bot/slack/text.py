"""Every user-facing string of the Slack surface, in one place."""

from __future__ import annotations

UNKNOWN_WORKSPACE = (":warning: This Slack workspace is not connected to Deskbridge. An admin can install it "
                     "from the Deskbridge install page (/slack/install).")
WORKING = "Working on it…"
LOADING = ":hourglass_flowing_sand: Loading…"
SAVING = (":hourglass_flowing_sand: Saving… this is taking longer than usual. Keep this open to see the result; "
          "if you close it, the outcome is posted in the ticket's thread. Don't send it again.")
QUEUED_SUFFIX = "queued for the PSA"
INTERNAL_ERROR = (":warning: Something went wrong on our side while handling that. If it was a change, check the "
                  "ticket (`/ticket N`) before trying again.")
NOT_A_TECH_THREAD = "Your message was not written to the ticket: only technicians' messages in its thread are."
NOT_A_TECH_THREAD_HINT = ("If you are a technician, link your Slack account with `/deskbridge link` (or ask an "
                          "admin), then send it again.")
NOT_IN_CHANNEL = ("I can't post in this channel yet, so here is the card just for you. Invite me with "
                  "`/invite @Deskbridge` to give tickets a thread here.")
SHARED_UNBOUND = ("This channel is shared with people outside your organization, so ticket cards are only "
                  "posted here once it is bound to their company (`/deskbridge bind customer <id>`). Here is the "
                  "card just for you.")
SUBMIT_CRASHED = "Something went wrong on our side while saving this."
SUBMIT_CRASHED_HINT = "Check the ticket (`/ticket N`) before sending it again: it may have been saved."
BUSY = ":hourglass: Deskbridge is very busy right now and could not take that. Try again in a minute."
OPEN_FAILED = ":warning: Slack gave up waiting for the form to open. Click the button again."
FORM_TITLES = {"reply": "Reply", "note": "Internal note", "status": "Change status", "time": "Add time"}
NO_LINK = "No link is configured for this."
BIND_CANNOT_SEE_CHANNEL = ("Deskbridge can't read this channel's details, so it can't tell whether the channel is "
                           "shared with people outside your organization. Nothing was bound.")
BIND_CANNOT_SEE_CHANNEL_HINT = "Invite the app to the channel (/invite @Deskbridge) and run the command again."
HOME_EMPTY = "No open tickets are assigned to you. :tada:"
HOME_UNLINKED = ("Deskbridge doesn't know which technician you are yet. Run `/deskbridge link` in any channel "
                 "to link your Slack account by e-mail.")
SHORTCUT_TITLE = "Ticket from message"
THREAD_PSA_PREFIX = ":inbox_tray: *From the PSA*"
THREAD_CHAT_PREFIX = ":speech_balloon: *Added in Deskbridge*"
WRITE_DELIVERED = ":white_check_mark: Delivered to the PSA: {what}."
WRITE_DEAD = (":x: *Could not deliver to the PSA:* {what} ({error}). Nothing more will be tried. An admin can "
              "retry it with `/deskbridge outbox redrive {op_id}` or drop it with `/deskbridge outbox discard {op_id}`.")
WRITE_DEAD_CAUSE = {
    "credentials": (":x: *Could not deliver to the PSA:* {what}. The PSA refused Deskbridge's credentials, so nothing "
                    "reaches it until an admin re-enters them (`deskbridge connection reauth {connection}`) and "
                    "retries: `/deskbridge outbox redrive {op_id}`."),
    "permission": (":x: *Could not deliver to the PSA:* {what} ({error}). The PSA's API account may not do this "
                   "(its security role); Deskbridge's other writes go on. An admin grants it in the PSA, then retries: "
                   "`/deskbridge outbox redrive {op_id}` (or drops it: `/deskbridge outbox discard {op_id}`)."),
    "deleted": (":x: *Could not deliver to the PSA:* {what}. The ticket is no longer in the PSA (deleted or merged "
                "there), so nothing more can be written to it. An admin can drop it: "
                "`/deskbridge outbox discard {op_id}`."),
    "refused": (":x: *Could not deliver to the PSA:* {what} ({error}). Sent again as it is, it would be refused "
                "again: fix what the PSA names (in the PSA, or write it again here), then an admin can retry it with "
                "`/deskbridge outbox redrive {op_id}` or drop it with `/deskbridge outbox discard {op_id}`."),
}
# A Microsoft 365 quick action Graph refused: its error says what the customer's admin must grant (never the PSA's).
TENANT_ACTION_DEAD = (":x: *Microsoft 365 quick action not done:* {error} An admin can retry it with "
                      "`/deskbridge outbox redrive {op_id}` once that is fixed, or drop it with "
                      "`/deskbridge outbox discard {op_id}`.")
SLA_BREACHED = ":rotating_light: *SLA breached*"
SLA_WARNING = ":alarm_clock: *SLA warning*"
NEW_TICKET = ":new: New ticket"

VISIBILITY_BADGE = {"public": ":speech_balloon: *Public*", "internal": ":lock: *Internal*",
                    "resolution": ":white_check_mark: *Resolution*"}
OP_NAMES = {"create_ticket": "new ticket", "update_ticket": "ticket change", "add_note": "note",
            "add_time_entry": "time entry", "upload_attachment": "attachment", "alert_action": "alert action",
            "tenant_action": "Microsoft 365 quick action"}


def confirm_thread(confirmation: str, *, by: str | None = None) -> str:
    """The bot's reply in a thread after a write; in a thread others read, it names who (`by`: user id)."""
    return f":memo: <@{by}> · {confirmation}" if by else f":memo: {confirmation}"


def error_text(message: str, hint: str | None) -> str:
    return f":warning: {message}" + (f"\n{hint}" if hint else "")


def submit_failed(message: str, hint: str | None, values: dict[str, str]) -> str:
    """A slow form that was refused after its modal closed: the reason and what the user typed."""
    typed = "\n".join(f"> {v[:1500]}" for k, v in values.items() if k in ("text", "notes", "description") and v)
    return error_text(message, hint) + (f"\nWhat you wrote:\n{typed}" if typed else "")


def redaction_report(redacted: int, failed: int, foreign_threads: int) -> str:
    """What an admin is told after the bot cleaned up a channel the customer can now read ('' if nothing)."""
    parts = []
    if redacted:
        parts.append(f":broom: The customer can read this channel's history, so {redacted} earlier Deskbridge "
                     "post(s) here that held internal details or other customers' tickets were removed or "
                     "redrawn as the customer's view.")
    if failed:
        parts.append(f":warning: {failed} post(s) could not be changed. Run the bind again in a few minutes.")
    if foreign_threads:
        parts.append(f":eyes: {foreign_threads} thread(s) here are about other customers' tickets. Deskbridge "
                     "posts nothing more in them, but a bot cannot delete what people wrote there: review "
                     "those threads and delete what the customer must not read.")
    return " ".join(parts)

# End users asking for help in a customer channel (bot/slack/listeners/requests.py)
REQUEST_OFFER = "Would you like a ticket for this? Our technicians will follow up in its thread."
REQUEST_OPEN_BUTTON = "Open a ticket"
REQUEST_NO_BUTTON = "No thanks"
REQUEST_ALREADY = "A ticket was already opened for that message; follow it in the message's thread."


def request_opened(number: int | None, subject: str) -> str:
    """The private confirmation once an end user's ticket is opened."""
    ref = f"#{number}" if number else "Your ticket"
    return f"{ref} opened: {subject}. Replies from our technicians appear in your message's thread."




DM_NOT_A_CONTACT = ("I could not find you as a contact of one of our customers, so I cannot open a ticket "
                    "from here, and your message was not taken.")
DM_NOT_A_CONTACT_HINT = ("Ask in your company's support channel, or e-mail your MSP's support address; a "
                         "technician can add you as a contact.")
