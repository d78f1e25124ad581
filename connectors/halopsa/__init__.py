"""HaloPSA groundwork (reference/psa-apis.md §4): everything but connector.py and webhooks.py.

    auth.py            settings -> HaloTenant; authinfo discovery; HaloAuth hands out one shared token per
                       tenant through a TokenCache (get/put/discard + lock); InMemoryTokenCache for tests
    client.py          HaloClient: bearer requests, one refresh on 401, paging with the repeat-last-page
                       guard (get_page/PageScan, iter_pages, get_all), POST arrays, errors translated once
    problems.py        Halo's error body shapes -> (message, code, fields)
    queries.py         the named query parameters of each list endpoint
    mapping.py         Halo JSON -> canonical models (pure)
    mapping_writes.py  canonical writes -> POST bodies (pure)

Notes for connector.py:
- Settings `url` (+ optional `tenant`, `auth_url`, `scope`); credentials `client_id`, `client_secret`.
  Build HaloAuth(tenant, id, secret, cache) and HaloClient(tenant, auth). In production the cache must
  be the database (one row per `auth.cache_key`, token encrypted at rest, `lock` = a row lease or
  advisory lock): a new token may invalidate the old one, so per-instance caches fight (tested).
- Board = ticket type (it scopes statuses, required fields, default SLA); team is a name
  (`ticket_team`, write `team_name`). Closed statuses: `closed_status_ids(GET Status, GET
  Status?excludeclosed=true)`; statuses per board: `statuses_for_type(GET TicketType/{id}?includedetails)`;
  priorities per SLA: `priorities(rows, sla_id=type.default_sla)`; required fields: `required_fields`.
- Changed tickets: `queries.tickets(updated_since=since - overlap)` + `client.get_page` with a cursor
  holding PageScan.page_no/previous_first_id. Page numbers over a changing set can shift rows: dedupe
  by (id, updated_at) and keep the watermark overlap.
- Dedupe without touching text: tickets carry `third_party_id_string = "db:<marker>"`, attachments
  `third_party_id = "db:<marker>"` (both agent-side fields; whether list rows return them on a live
  tenant is [unverified]: fall back to GET Tickets/{id}). Actions have no integrator id field: find a
  lost note/time write by natural key in GET Actions?ticket_id&agentonly&excludesys&startdate=<attempt
  start - skew>: same author (who_agentid; the API agent is GET Agent/me), hiddenfromuser, outcome_id,
  note text, and for time timetaken + actionarrivaldate (`mapping.action_matches`). Optionally pass `marker_field_id` (an
  agent-only custom field, CustomField.onlyshowforagents) to stamp tickets and actions too; `guid`
  on actions might be client-settable ([unverified], the fake accepts it).
- E-mail per action: `note_body(..., email_to=…)` with `email_contact` sends `sendemail: true` +
  `emailto`/`emailcc`/`emailsubject` on a `hiddenfromuser: false` action; no ticket setting changes.
  `sendemail` is always explicit: left out, the outcome's defaults apply ("Email User" mails).
- Outcome ids (public note, internal note, time entry) are tenant data and the API agent must be allowed
  to use them (else a 400 "You do not have access to this Action at the moment"): make them settings.
- Hosted limit 300 requests / rolling 5 min, token calls included; 429 -> PsaRateLimited(retry_after,
  60 s when Halo does not say).
"""
