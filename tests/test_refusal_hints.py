"""Every refusal says what to do next: in the modules where technicians and customers meet refusals most
(ticket writes, lookups, alert actions, chat admin, linking, chat writes and commands), each raise of a
refusal (InvalidInput, NotFound, PermissionDenied, Conflict) carries a `hint`. Extend MODULES as modules are
brought in line (notes/session6-probe.md lists the ones left)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFUSALS = {"InvalidInput", "NotFound", "PermissionDenied", "Conflict"}
MODULES = ["core/tickets.py", "core/ticket_lookup.py", "core/alert_webhooks.py", "core/chat/admin.py",
           "core/chat/identity.py", "core/chat/writes.py", "core/chat/runner.py", "core/ai/knowledge.py"]


def _hintless(path: Path) -> list[str]:
    src = path.read_text()
    out = []
    for node in ast.walk(ast.parse(src)):
        if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
            continue
        func = node.exc.func
        name = getattr(func, "id", None) or getattr(func, "attr", None)
        if name in REFUSALS and len(node.exc.args) < 2 and "hint" not in {k.arg for k in node.exc.keywords}:
            out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.get_source_segment(src, node.exc)}")
    return out


def test_refusals_say_what_to_do_next():
    missing = [line for m in MODULES for line in _hintless(ROOT / m)]
    assert not missing, "refusals without a hint (say what the user can do):\n" + "\n".join(missing)
