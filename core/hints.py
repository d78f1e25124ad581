"""Next steps that several services give under a refusal, worded once (core's words: chat and CLI).

A surface that words a refusal differently (REST) keys on the error's `reason` (core/errors.py), never on these
texts."""

from __future__ import annotations

TICKET_NOT_FOUND = "ticket-not-found"  # reason: the ticket does not exist or is outside the actor's scope
CUSTOMER_NOT_FOUND = "customer-not-found"  # reason: a customer named by id that does not exist here
MEMBER_NOT_FOUND = "member-not-found"  # reason: a technician named by id that does not exist or is inactive
TECHNICIANS_ONLY = "technicians-only"  # reason: a customer (or a customer channel) asked for a technician's view

TICKET_HINT = "Check the number with /tickets. In a customer channel only that customer's tickets can be opened."
TECH_ONLY_HINT = ("Technicians: open it in a technicians' channel or a direct message with Deskbridge (link your "
                  "chat account first: /deskbridge link). Customers: ask your MSP.")
LINK_FIRST_HINT = "Link your chat account to your technician account with /deskbridge link, then try again."
WORKSPACE_HINT = "List workspaces with `deskbridge workspace list`."
CUSTOMER_HINT = ("Name the customer by its PSA identifier, e.g. ACME; a new one appears after a PSA sync "
                 "(`deskbridge sync run`).")
