"""The console's `context` command text: the M365 user quick view of the open ticket's user, recent activity,
installed apps and quick-action results (pure)."""

from __future__ import annotations

from datetime import datetime

from core.tenant_actions import CONFIRM, QuickActionAccepted
from core.tenant_context import SIGN_IN_SCAN, ActivityView, AppsView, UserQuickView

CONTEXT_WORDS = ("activity", "apps", "user", "reset", "revoke", "sync")
# The same questions as Slack and Teams ask (core/tenant_actions.py), about the open ticket's user.
CONTEXT_CONFIRM = {word: CONFIRM[action].format(user="this user", device="this device")
                   for word, action in (("reset", "reset_password"), ("revoke", "revoke_sessions"),
                                        ("sync", "sync_device"))}


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def render_user_context(view: UserQuickView) -> str:
    """The quick view as lines of text; gaps are listed as notes."""
    lines: list[str] = []
    u = view.user
    if u is None:
        lines.append("Microsoft 365: no user shown.")
    else:
        lines.append(f"Microsoft 365 — {u.display_name} <{u.upn}>")
        account = ["enabled" if u.enabled else "DISABLED", "synced from on-premises AD" if u.on_prem_synced
                   else "cloud-only"]
        if not any(n.startswith("Sign-in:") for n in view.notes):
            account.append(f"last sign-in {_when(view.last_sign_in)}")
        lines.append("  Account: " + " · ".join(account))
        if view.mfa is not None:
            state = {True: "registered", False: "NOT registered", None: "methods"}[view.mfa.registered]
            methods = ", ".join(view.mfa.methods) or "none"
            default = f"; default {view.mfa.default_method}" if view.mfa.default_method else ""
            lines.append(f"  MFA: {state} ({methods}{default})")
        if view.licences is not None:
            lines.append("  Licences: " + (", ".join(x.name for x in view.licences) or "none"))
        if view.devices is not None:
            lines.append(f"  Devices ({len(view.devices)}):" if view.devices else "  Devices: none in Intune")
            for d in view.devices:
                enc = {True: "encrypted", False: "NOT encrypted", None: "encryption unknown"}[d.encrypted]
                lines.append(f"    {d.name}  {d.os} {d.os_version}  {d.compliance}  {enc}  "
                             f"last check-in {_when(d.last_sync)}")
    lines += [f"  Note: {n}" for n in view.notes]
    return "\n".join(lines)


def render_activity(view: ActivityView) -> str:
    """Recent sign-ins and directory audit events; a piece the tenant cannot give is a note."""
    lines = [f"Recent activity — {view.user_label}"]
    if view.sign_ins is not None:
        lines.append("  Sign-ins:" if view.sign_ins else "  Sign-ins: none")
        lines += [f"    {_when(x.at)}  {'ok    ' if x.ok else 'FAILED'}  {x.app}  {x.ip}  {x.location}"
                  + (f"  ({x.failure})" if not x.ok else "") for x in view.sign_ins]
    if view.audits is not None:
        lines.append("  Audit events:" if view.audits else "  Audit events: none")
        lines += [f"    {_when(a.at)}  {a.activity}  by {a.by or 'unknown'}  {a.result}" for a in view.audits]
    if view.device is not None:
        d = view.device
        lines.append(f"  {d.name} (this ticket's device): last check-in {_when(d.last_sync)}, enrolled "
                     f"{_when(d.enrolled)}")
        if view.device_sign_ins is not None:
            lines.append("    Sign-ins from it:" if view.device_sign_ins else
                         f"    Sign-ins from it: none among the user's last {SIGN_IN_SCAN}")
            lines += [f"      {_when(x.at)}  {'ok    ' if x.ok else 'FAILED'}  {x.app}  {x.ip}"
                      for x in view.device_sign_ins]
    lines += [f"  Note: {n}" for n in view.notes if n]
    return "\n".join(lines)


def render_apps(view: AppsView) -> str:
    lines = [f"Installed apps on {view.device_name or 'the device'}"]
    if view.apps is not None:
        lines += [f"  {a.name} {a.version}" + (f" ({a.publisher})" if a.publisher else "") for a in view.apps]
        lines.append(f"  {len(view.apps)} app(s) detected by Intune")
    lines += [f"  Note: {n}" for n in view.notes if n]
    return "\n".join(lines)


def render_accepted(done: QuickActionAccepted) -> str:
    lines = [done.confirmation]
    if done.temporary_password:
        lines.append(f"Temporary password (shown once, only here): {done.temporary_password}")
    return "\n".join(lines)
