"""Secrets never reach the logs, whoever logs them."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from bot import jobs
from bot.logging import JsonFormatter, RedactingFilter, choose_format, configure, parse_levels, redact
from bot.settings import Settings
from store.db import Database


def test_redact_patterns():
    samples = {
        "token xoxb-1234-5678-abcdef leaked": "xoxb-1234",
        "Authorization: Basic YWNtZStwdWI6cHJpdmF0ZQ==": "YWNtZStwdWI6cHJpdmF0ZQ",
        '{"private_key": "hunter2"}': "hunter2",
        "Secret=abc123XYZ&x=1": "abc123XYZ",
        "bearer eyJhbGciOiJIUzI1NiJ9.payload.sig": "eyJhbGciOiJIUzI1NiJ9",
        "app token xapp-1-A0-123-abc": "xapp-1-A0",
    }
    for text, secret in samples.items():
        assert secret not in redact(text), text


def test_records_and_extras_are_redacted_in_json_output():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("calling %s with token=%s", "psa", "s3cr3t-value", extra={"header": "Secret: topsecret1"})
        try:
            raise ValueError("password=letmein")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    text = stream.getvalue()
    assert "s3cr3t-value" not in text and "topsecret1" not in text and "letmein" not in text
    assert lines[0]["msg"].startswith("calling psa with token") and lines[0]["level"] == "info"


# ---------------------------------------------------------------- format choice and levels (issue 24)


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    named = {n: logging.getLogger(n).level for n in ("bot", "core", "connectors", "store", "apscheduler",
                                                        "apscheduler.scheduler", "uvicorn", "httpx")}
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    for n, lv in named.items():
        logging.getLogger(n).setLevel(lv)


def test_a_terminal_gets_short_coloured_lines_and_anything_else_json(restore_logging: None,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    tty = _Tty()
    assert configure("INFO", "auto", stream=tty) == "text"
    logging.getLogger("core.sync.engine").info("synced %d tickets", 300, extra={"connection": "sandbox"})
    line = tty.getvalue().strip()
    assert "\033[" in line and not line.startswith("{")
    plain = re.sub(r"\033\[[0-9;]*m", "", line)
    assert re.fullmatch(r"\d\d:\d\d:\d\d INFO  engine  synced 300 tickets  connection=sandbox", plain), plain

    pipe = io.StringIO()
    assert configure("INFO", "auto", stream=pipe) == "json"
    logging.getLogger("core.sync.engine").info("synced", extra={"connection": "sandbox"})
    record = json.loads(pipe.getvalue())
    assert record["msg"] == "synced" and record["connection"] == "sandbox" and record["logger"] == "core.sync.engine"

    forced = _Tty()
    assert configure("INFO", "json", stream=forced) == "json"  # configured: JSON even on a terminal
    logging.getLogger("bot.x").warning("hello")
    assert json.loads(forced.getvalue())["msg"] == "hello"


def test_no_color_and_redaction_in_text_lines(restore_logging: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    tty = _Tty()
    configure("INFO", "text", stream=tty)
    logging.getLogger("bot.slack").warning("token xoxb-1234-5678-abcdef", extra={"header": "Secret: topsecret1"})
    out = tty.getvalue()
    assert "\033[" not in out and "xoxb-1234" not in out and "topsecret1" not in out and "WARNING" in out


def test_third_party_loggers_are_at_warning_unless_asked(restore_logging: None) -> None:
    out = io.StringIO()
    configure("DEBUG", "json", stream=out)
    logging.getLogger("apscheduler.scheduler").info("Adding job tentatively -- it will be properly scheduled")
    logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
    chatty = logging.getLogger("httpx")
    chatty.setLevel(logging.DEBUG)  # a library that turned itself up is still held at WARNING
    chatty.debug("HTTP Request: GET /")
    logging.getLogger("aiohttp.server").warning("port in use")  # a third-party logger that propagates
    logging.getLogger("core.outbox.worker").debug("claimed 3 ops")
    msgs = [json.loads(x)["msg"] for x in out.getvalue().splitlines()]
    assert msgs == ["port in use", "claimed 3 ops"]

    asked = io.StringIO()
    configure("INFO", "json", levels="apscheduler=INFO, httpx=debug", stream=asked)
    logging.getLogger("apscheduler.scheduler").info("Adding job tentatively")
    logging.getLogger("httpx").debug("HTTP Request: GET /")
    logging.getLogger("alembic").info("still quiet")
    assert [json.loads(x)["msg"] for x in asked.getvalue().splitlines()] == ["Adding job tentatively",
                                                                          "HTTP Request: GET /"]


def test_bad_format_or_levels_say_what_to_write() -> None:
    with pytest.raises(ValueError, match="logger=LEVEL"):
        parse_levels("apscheduler")
    with pytest.raises(ValueError, match="logger=LEVEL"):
        parse_levels("httpx=LOUD")
    with pytest.raises(ValueError, match="auto, json, text"):
        choose_format("xml", io.StringIO())
    with pytest.raises(ValidationError, match="logger=LEVEL"):
        Settings(log_levels="httpx")
    assert Settings().log_format == "auto"


async def test_a_job_cancelled_by_shutdown_is_one_line_not_a_traceback(db: Database,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    started = asyncio.Event()

    async def slow() -> None:
        started.set()
        await asyncio.sleep(60)

    container = SimpleNamespace(db=db, settings=SimpleNamespace(instance_id="test"))
    task = asyncio.create_task(jobs.claimed(container, "slow", timedelta(minutes=1), slow)())  # type: ignore[arg-type]
    await started.wait()
    caplog.set_level(logging.INFO)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert not task.cancelled() and task.exception() is None  # the job ended quietly
    lines = [(r.levelname, r.getMessage(), r.exc_info) for r in caplog.records if r.name == "deskbridge.jobs"]
    assert lines == [("INFO", "scheduled job stopped by shutdown", None)]
