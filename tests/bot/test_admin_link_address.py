"""`deskbridge admin link` prints the address the running app serves, whatever the shell it runs in: `serve`
records its base URL (the public URL when set, else the address it bound) in the database they share."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from core.admin_links import served_base_url
from store.crypto import generate_key

EXE = Path(sys.executable).parent / "deskbridge"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DESKBRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
           "DESKBRIDGE_SECRET_KEY": (tmp_path / "key").read_text(), "DESKBRIDGE_SECRET_KEY_FILE": str(tmp_path / "k"),
           "DESKBRIDGE_LOG_LEVEL": "ERROR", "DESKBRIDGE_SANDBOX": "off", "DESKBRIDGE_RUN_SCHEDULER": "false"}
    for name in ("DESKBRIDGE_TEST_DATABASE_URL", "DESKBRIDGE_PORT", "DESKBRIDGE_PUBLIC_URL", "DESKBRIDGE_HOST"):
        env.pop(name, None)
    return {**env, **extra}


def _link(tmp_path: Path, **extra: str) -> tuple[str, str]:
    out = subprocess.run([str(EXE), "admin", "link"], cwd=tmp_path, env=_env(tmp_path, **extra), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    m = re.search(r"(\S+)/admin/login\?token=(\S+)", out.stdout)
    assert m, out.stdout
    return m.group(1), out.stdout


def _recorded(db: Path) -> list[tuple[str, str]]:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT instance_id, base_url FROM web_address").fetchall()
    except sqlite3.OperationalError:
        return []  # not migrated yet


def _serve(tmp_path: Path, *args: str, **extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([str(EXE), "serve", *args], cwd=tmp_path, env=_env(tmp_path, **extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not _recorded(tmp_path / "app.db"):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        time.sleep(0.3)
    assert _recorded(tmp_path / "app.db"), "serve recorded no address"
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


@pytest.mark.slow
def test_the_link_opens_the_running_app_whatever_port_the_shell_names(tmp_path: Path):
    (tmp_path / "key").write_text(generate_key())
    proc = _serve(tmp_path, "--port", "0")  # the OS picks the port: only the app knows it
    try:
        base, out = _link(tmp_path, DESKBRIDGE_PORT="8080")  # another shell, other settings
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base) and not base.endswith(":8080") \
            and not base.endswith(":0"), base
        link = re.search(r"\S+/admin/login\?token=\S+", out)
        assert link
        with httpx.Client(timeout=30) as browser:  # the printed link signs in, on the app that runs
            form = browser.get(link.group(0))
            token = re.search(r'name="token" value="([^"]+)"', form.text)
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert form.status_code == 200 and token and csrf, form.text[:500]
            signed = browser.post(base + "/admin/login", data={"token": token.group(1), "csrf": csrf.group(1)})
            assert signed.status_code == 303 and signed.headers["location"] == "/admin", signed.text[:500]
    finally:
        _stop(proc)
    assert proc.returncode in (0, -signal.SIGTERM)  # uvicorn shuts down, then re-raises the signal it caught
    assert _recorded(tmp_path / "app.db") == []  # a stopped app is forgotten
    base, out = _link(tmp_path)  # nothing running: this shell's settings, and it says so
    assert base == "http://127.0.0.1:8080" and "No running `deskbridge serve`" in out


@pytest.mark.slow
def test_the_public_url_of_the_running_app_wins(tmp_path: Path):
    (tmp_path / "key").write_text(generate_key())
    proc = _serve(tmp_path, "--port", "0", DESKBRIDGE_PUBLIC_URL="https://desk.example.com/")
    try:
        base, out = _link(tmp_path)
        assert base == "https://desk.example.com" and "No running" not in out
    finally:
        _stop(proc)


def test_the_base_url_from_settings():
    assert served_base_url(None, "0.0.0.0", 9000) == "http://127.0.0.1:9000"
    assert served_base_url(None, "::", 9000) == "http://[::1]:9000"
    assert served_base_url(None, "10.0.0.5", 81) == "http://10.0.0.5:81"
    assert served_base_url("https://desk.example.com/", "0.0.0.0", 9000) == "https://desk.example.com"
