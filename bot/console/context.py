"""The console's `context` command text: the M365 user quick view of the open ticket's contact (pure)."""

from __future__ import annotations

from datetime import datetime

from core.tenant_context import UserQuickView


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
