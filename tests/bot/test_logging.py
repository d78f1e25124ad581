"""Secrets never reach the logs, whoever logs them."""

from __future__ import annotations

import io
import json
import logging

from bot.logging import JsonFormatter, RedactingFilter, redact


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
