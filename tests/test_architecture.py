"""The layer rules (README, Architecture), as import-linter contracts (pyproject.toml), checked on every run."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_contracts_cover_every_rule():
    text = (ROOT / "pyproject.toml").read_text()
    for rule in ('layers = ["bot", "core", "store | connectors"]', 'source_modules = ["bot"]',
                 'source_modules = ["core"]', 'modules = ["store", "connectors"]', 'containers = ["bot.cli"]',
                 'containers = ["core.chat"]'):
        assert rule in text


def test_core_is_forbidden_every_vendor_package():
    """Every vendor package under connectors/ (one folder per PSA, RMM, docs platform, Graph) and the shared HTTP
    plumbing is in the "services see only the connector seam" contract, so a new one is not left reachable."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    (seam,) = [c for c in contracts if c.get("source_modules") == ["core"] and c["type"] == "forbidden"]
    packages = {f"connectors.{p.name}" for p in (ROOT / "connectors").iterdir() if (p / "__init__.py").exists()}
    plumbing = {"connectors.http", "connectors.docs_http", "connectors.registry", "connectors.alert_webhook"}
    assert packages, "no vendor packages found"
    assert sorted((packages | plumbing) - set(seam["forbidden_modules"])) == []


PLATFORM_PACKAGES = ("slack_sdk", "slack_bolt", "botbuilder", "botframework", "microsoft_teams", "msal", "bot")


def test_chat_core_knows_no_platform():
    """Everything in core/chat/ is shared by Slack, Teams and the console: no module there may import a chat
    platform's SDK or a surface (bot.*), not even lazily inside a function."""
    offenders = []
    for path in sorted((ROOT / "core" / "chat").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names
                          if n.split(".")[0] in PLATFORM_PACKAGES]
    assert offenders == []
    assert len(list((ROOT / "core" / "chat").glob("*.py"))) > 10  # the package is really there


def test_nothing_reads_settings_or_builds_engines_at_import_time():
    offenders = []
    for path in ROOT.glob("*/**/*.py"):
        if path.parts[len(ROOT.parts)] not in ("bot", "core", "connectors", "store"):
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only
            for call in ast.walk(node) if isinstance(node, (ast.Assign, ast.Expr, ast.AnnAssign)) else ():
                if isinstance(call, ast.Call) and getattr(call.func, "id", getattr(call.func, "attr", "")) in (
                        "Settings", "create_engine", "create_async_engine", "Database", "settings_from_env"):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_core_never_calls_datetime_now_in_pure_modules():
    pure = [ROOT / "core" / "status.py", ROOT / "core" / "views.py"]
    for extra in ("sla/clock.py",):
        if (ROOT / "core" / extra).exists():
            pure.append(ROOT / "core" / extra)
    for path in pure:
        assert "datetime.now(" not in path.read_text(), path


MAX_FUNCTION_LINES = 80
LONG_FUNCTIONS_TO_SPLIT: set[tuple[str, str]] = set()  # issue 13: none left


def test_functions_stay_short():
    """No function in the product packages is longer than 80 lines (decorators excluded, nested functions
    counted with their parent): a reader sees each one whole. Migrations are exempt (one schema per file)."""
    long = set()
    for package in ("bot", "core", "connectors", "store"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    if (node.end_lineno or node.lineno) - node.lineno + 1 > MAX_FUNCTION_LINES:
                        long.add((path.relative_to(ROOT).as_posix(), node.name))
    assert long <= LONG_FUNCTIONS_TO_SPLIT, sorted(long - LONG_FUNCTIONS_TO_SPLIT)
    assert long == LONG_FUNCTIONS_TO_SPLIT, f"split already, drop from the list: {sorted(LONG_FUNCTIONS_TO_SPLIT - long)}"


def test_hints_name_only_real_cli_commands():
    """Every `deskbridge GROUP COMMAND` a message or docstring tells someone to run exists in the CLI (chat's
    `/deskbridge …` and `@Deskbridge …` forms are other commands and are not checked here)."""
    import re

    import typer.main

    from bot.cli import app

    groups = {name: set(getattr(g, "commands", {})) for name, g in typer.main.get_command(app).commands.items()}
    said = re.compile(r"(?<![/@A-Za-z])`deskbridge ([a-z][a-z0-9-]*)(?: ([a-z][a-z0-9-]*))?")
    wrong = []
    for package in ("bot", "core", "connectors"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                for m in said.finditer(line):
                    group, command = m.group(1), m.group(2)
                    if group not in groups or (groups[group] and command and command not in groups[group]):
                        wrong.append(f"{path.relative_to(ROOT)}:{n}: {m.group(0)}")
    assert groups and wrong == []


def test_long_modules_say_why_at_their_top():
    """A module in core/ or bot/ over 400 lines says at its top why it is that long and what to split next."""
    silent = []
    for package in ("core", "bot"):
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text()
            if text.count("\n") > 400 and "400 lines" not in (ast.get_docstring(ast.parse(text)) or ""):
                silent.append(path.relative_to(ROOT).as_posix())
    assert silent == []
