"""Create/update/delete handlers of the fake Autotask server (see tests/fakes/autotask.py).

Bodies bind case-insensitively, as ASP.NET does; unknown and read-only fields are ignored silently, as Autotask
does (e.g. `hoursToBill`), and recorded in `fake.ignored_fields` so tests can prove nothing was lost.
Refusals answer HTTP 500 with `{"errors": [...]}`. Message texts are modelled on reported ones
("Value does not reference an existing entity for taskType .", "When assigning a Resource, you must assign
both a assignedResourceID and assignedResourceRoleID.", "No matching records found...") [unverified in detail].
Creates and updates answer `{"itemId": id}`, never the record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes import autotask_hooks as hooks
from tests.fakes.autotask_http import AtError, FakeRequest, FakeResponse, json_response, rejected
from tests.fakes.autotask_schema import SPECS, EntitySpec, fmt, fmt_date, parse

if TYPE_CHECKING:
    from tests.fakes.autotask import FakeAutotask

COMPLETE = 5


def body_of(req: FakeRequest) -> dict[str, Any]:
    try:
        body = req.json()
    except ValueError:
        raise AtError(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise AtError(400, "The request body must be a JSON object.")
    return body


def _convert(spec: EntitySpec, name: str, kind: str, value: Any) -> Any:
    if value is None:
        return None
    bad = rejected(f"Invalid value '{value}' for field {name} of the {spec.label} entity.")
    if kind == "i":
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
            raise bad
        return int(value)
    if kind == "f":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if kind == "b":
        if not isinstance(value, bool):
            raise bad
        return value
    if kind == "d":
        parsed = parse(value)
        if parsed is None:
            raise bad
        return fmt(parsed)
    text = str(value)
    limit = spec.lengths.get(name)
    if limit and len(text) > limit:
        raise rejected(f"The value for field {name} exceeds the maximum length of {limit} characters.")
    return text


def accept(fake: FakeAutotask, spec: EntitySpec, body: dict[str, Any]) -> dict[str, Any]:
    """The writable fields of a body under their wire names, converted and checked against picklists."""
    out: dict[str, Any] = {}
    for key, value in body.items():
        name = spec.canonical(key)
        if name is None or (name in spec.read_only and name != "id"):
            fake.ignored_fields.append((spec.name, key, "unknown" if name is None else "read-only"))
            continue
        kind = spec.fields[name]
        if kind == "u":
            out[name] = _udfs(fake, spec, value)
        elif kind == "x":
            out[name] = value
        else:
            out[name] = _convert(spec, name, kind, value)
    for name, value in out.items():
        picks = fake.picklists.get(spec.name, {}).get(name)
        if picks is not None and value is not None:
            pick = next((p for p in picks if p.value == value), None)
            if pick is None:
                raise rejected(f"Value does not reference an existing entity for {name} .")
            if not pick.active:
                raise rejected(f"The value {value} for field {name} is inactive.")
        ref = spec.references.get(name)
        if ref and value is not None and value not in fake.tables[ref]:
            raise rejected(f"Value does not reference an existing entity for {name} .")
    return out


def _udfs(fake: FakeAutotask, spec: EntitySpec, value: Any) -> list[dict[str, Any]]:
    defined = {u.name.lower(): u for u in fake.udfs.get(spec.name, [])}
    if not isinstance(value, list):
        raise rejected("userDefinedFields must be a list of {name, value}.")
    out = []
    for item in value:
        name = str((item or {}).get("name") or (item or {}).get("Name") or "")
        udf = defined.get(name.lower())
        if udf is None:
            raise rejected(f"The user-defined field '{name}' does not exist for the {spec.label} entity.")
        raw = (item or {}).get("value", (item or {}).get("Value"))
        if raw is not None and len(str(raw)) > udf.length:
            raise rejected(f"The value for user-defined field {udf.name} exceeds {udf.length} characters.")
        out.append({"name": udf.name, "value": None if raw is None else str(raw)})
    return out


def merge_udfs(record: dict[str, Any], changes: list[dict[str, Any]]) -> None:
    current = {u["name"]: u for u in record["userDefinedFields"]}
    for change in changes:
        current[change["name"]] = change
    record["userDefinedFields"] = list(current.values())


def require(spec: EntitySpec, data: dict[str, Any], names: set[str] | frozenset[str]) -> None:
    missing = [n for n in sorted(names) if data.get(n) in (None, "")]
    if missing:
        raise rejected(*(f"Missing required field: {n}." for n in missing))


def id_of(spec: EntitySpec, body: dict[str, Any]) -> int:
    raw = next((v for k, v in body.items() if k.lower() == "id"), None)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        raise rejected(f"An update of the {spec.label} entity must carry its id.")
    return raw


def found(fake: FakeAutotask, spec: EntitySpec, rid: int) -> dict[str, Any]:
    record = fake.tables[spec.name].get(rid)
    if record is None:
        raise rejected(f"No matching records found. The {spec.label} with id {rid} does not exist or the logged "
                       f"in Resource does not have the required permissions.")
    return record


def item_answer(rid: int) -> FakeResponse:
    return json_response(200, {"itemId": rid})


def _check_assignment(fake: FakeAutotask, record: dict[str, Any]) -> None:
    res, role = record.get("assignedResourceID"), record.get("assignedResourceRoleID")
    if (res is None) != (role is None):
        raise rejected("When assigning a Resource, you must assign both a assignedResourceID and "
                       "assignedResourceRoleID.")
    if res is not None and not any(r["resourceID"] == res and r["roleID"] == role and r["isActive"]
                                   for r in fake.tables["ResourceServiceDeskRoles"].values()):
        raise rejected(f"The resource {res} has no active service desk role {role}: it cannot be assigned.")


def _check_ticket(fake: FakeAutotask, t: dict[str, Any], now: str) -> None:
    _check_assignment(fake, t)
    contact = fake.tables["Contacts"].get(t.get("contactID") or -1)
    if contact is not None and contact["companyID"] != t["companyID"]:
        raise rejected("The contactID does not belong to the ticket's companyID.")
    sub = t.get("subIssueType")
    if sub is not None:
        pick = next(p for p in fake.picklists["Tickets"]["subIssueType"] if p.value == sub)
        if pick.parent != t.get("issueType"):
            raise rejected("The subIssueType does not belong to the ticket's issueType.")
    status_now = t.get("status")
    if status_now == COMPLETE and not t.get("completedDate"):
        t["completedDate"], t["completedByResourceID"] = now, fake.acting
    elif status_now != COMPLETE:
        t["completedDate"] = t["completedByResourceID"] = None


def impersonator(fake: FakeAutotask) -> int | None:
    return fake.api_resource_id if fake.acting != fake.api_resource_id else None


# ---------------------------------------------------------------- root entities


def create_root(fake: FakeAutotask, req: FakeRequest, spec: EntitySpec) -> FakeResponse:
    data = accept(fake, spec, body_of(req))
    data.pop("id", None)
    if spec.name == "Tickets":
        return item_answer(create_ticket(fake, data))
    if spec.name == "TimeEntries":
        return item_answer(create_time_entry(fake, data))
    require(spec, data, spec.required)
    now = fake.stamp()
    record = fake.blank(spec.name) | data | {"createDate": now, "lastActivityDate": now, "isActive": data.get(
        "isActive", True), "lastTrackedModifiedDateTime": now, "createdByResourceID": fake.acting,
                                              "impersonatorCreatorResourceID": impersonator(fake)}
    return item_answer(fake.insert(spec.name, record))


def create_ticket(fake: FakeAutotask, data: dict[str, Any]) -> int:
    """Validate and store a new ticket (also used by the fake's own add_ticket)."""
    spec = SPECS["Tickets"]
    require(spec, data, spec.required)
    now = fake.stamp()
    defaults = {p: next((v.value for v in fake.picklists["Tickets"][p] if v.default), None)
                for p in ("ticketCategory", "ticketType")}
    record = fake.blank("Tickets") | defaults | data
    udfs = [{"name": u.name, "value": None} for u in fake.udfs.get("Tickets", [])]
    record["userDefinedFields"] = udfs
    merge_udfs(record, data.get("userDefinedFields") or [])
    _check_ticket(fake, record, now)
    seq = sum(1 for t in fake.tables["Tickets"].values() if t["createDate"][:10] == now[:10]) + 1
    record.update(ticketNumber=f"T{now[:10].replace('-', '')}.{seq:04d}", createDate=now, lastActivityDate=now,
                  lastTrackedModificationDateTime=now, creatorResourceID=fake.acting, creatorType=1,
                  impersonatorCreatorResourceID=impersonator(fake), lastActivityResourceID=fake.acting,
                  lastActivityPersonType=1)
    rid = fake.insert("Tickets", record)
    hooks.emit(fake, "Tickets", "Create", record)
    return rid


def update_root(fake: FakeAutotask, req: FakeRequest, spec: EntitySpec) -> FakeResponse:
    body = body_of(req)
    rid = id_of(spec, body)
    record = found(fake, spec, rid)
    data = accept(fake, spec, body)
    data.pop("id", None)
    now = fake.stamp()
    if spec.name == "Tickets":
        update_ticket(fake, record, data)
    elif spec.name == "TimeEntries":
        merged = record | data
        _time_rules(fake, merged, now)
        record.update(merged, lastModifiedDateTime=now, lastModifiedUserID=fake.acting,
                      impersonatorUpdaterResourceID=impersonator(fake))
    else:
        udfs = data.pop("userDefinedFields", None)
        record.update(data)
        if udfs:
            merge_udfs(record, udfs)
        for stamp in ("lastActivityDate", "lastTrackedModifiedDateTime", "lastModifiedDate"):
            if stamp in record:
                record[stamp] = now
    return item_answer(rid)


def update_ticket(fake: FakeAutotask, record: dict[str, Any], data: dict[str, Any]) -> None:
    """Apply a ticket PATCH (only the fields given) and move its watermarks."""
    udfs = data.pop("userDefinedFields", None)
    merged = record | data
    now = fake.stamp()
    _check_ticket(fake, merged, now)
    changed = {k for k, v in data.items() if record.get(k) != v}
    record.update(merged)
    if udfs:
        merge_udfs(record, udfs)
    record.update(lastTrackedModificationDateTime=now, lastActivityDate=now, lastActivityResourceID=fake.acting)
    if changed or udfs:
        hooks.emit(fake, "Tickets", "Update", record, changed)


def _time_rules(fake: FakeAutotask, t: dict[str, Any], now: str) -> None:
    if t.get("ticketID") is None and t.get("taskID") is None:
        raise rejected("A time entry must reference a ticketID or a taskID.")
    start, end = parse(t.get("startDateTime")), parse(t.get("endDateTime"))
    if start and end:
        hours = round((end - start).total_seconds() / 3600, 4)
        if hours <= 0:
            raise rejected("endDateTime must be after startDateTime.")
        if t.get("hoursWorked") is not None and abs(t["hoursWorked"] - hours) > 0.01:
            raise rejected("hoursWorked does not match startDateTime and endDateTime.")
        t["hoursWorked"] = hours
    if not t.get("hoursWorked") or not 0 < t["hoursWorked"] <= 24:
        raise rejected("Missing required field: hoursWorked (or startDateTime and endDateTime).")
    worked = start or parse(t.get("dateWorked"))
    if worked is None:
        raise rejected("Missing required field: dateWorked.")
    t["dateWorked"] = fmt_date(worked)
    lock = fake.locked_timesheets.get(t["resourceID"])
    if lock is not None and worked.date() <= lock:
        raise rejected("The time entry cannot be saved: the timesheet for this period has been submitted or "
                       "approved.")
    roles = [r for r in fake.tables["ResourceServiceDeskRoles"].values()
             if r["resourceID"] == t["resourceID"] and r["isActive"]]
    if t.get("roleID") is None:
        t["roleID"] = next((r["roleID"] for r in roles if r["isDefault"]), None)
    if not any(r["roleID"] == t["roleID"] for r in roles):
        raise rejected("Value does not reference an existing entity for roleID .")
    t["hoursToBill"] = 0.0 if t.get("isNonBillable") else round(t["hoursWorked"] + (t.get("offsetHours") or 0), 4)


def create_time_entry(fake: FakeAutotask, data: dict[str, Any]) -> int:
    """Validate and store a time entry; bumps its ticket's lastActivityDate."""
    require(SPECS["TimeEntries"], data, SPECS["TimeEntries"].required)
    now = fake.stamp()
    record = fake.blank("TimeEntries") | {"isNonBillable": False, "timeEntryType": 2} | data
    record.setdefault("showOnInvoice", not record["isNonBillable"])
    if record["showOnInvoice"] is None:
        record["showOnInvoice"] = not record["isNonBillable"]
    _time_rules(fake, record, now)
    record.update(createDateTime=now, lastModifiedDateTime=now, creatorUserID=fake.acting,
                  impersonatorCreatorResourceID=impersonator(fake))
    rid = fake.insert("TimeEntries", record)
    if record.get("ticketID") in fake.tables["Tickets"]:
        fake.tables["Tickets"][record["ticketID"]]["lastActivityDate"] = now
    return rid


def delete_time_entry(fake: FakeAutotask, req: FakeRequest, rid: int) -> FakeResponse:
    found(fake, SPECS["TimeEntries"], rid)
    fake.tables["TimeEntries"].pop(rid)
    return item_answer(rid)
