"""Redaction of API keys in log records (the access log through real `spm serve` processes is in
tests/spm/test_cli_serve_config.py)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from services.common.logs import RedactSecrets, formatter, redact


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/v1/events?api_key=s3cr3t", "/v1/events?api_key=[REDACTED]"),
        ("/x?a=1&API_KEY=s3cr3t&b=2", "/x?a=1&API_KEY=[REDACTED]&b=2"),
        ("/x?api%5Fkey=s3cr3t#frag", "/x?api%5Fkey=[REDACTED]#frag"),
        ("GET https://h/x?api_key=s3cr3t HTTP/1.1", "GET https://h/x?api_key=[REDACTED] HTTP/1.1"),
        ("/x?my_api_key=s3cr3t", "/x?my_api_key=s3cr3t"),  # another parameter
        ("/x?api_keys=1", "/x?api_keys=1"),
    ],
)
def test_redact(url: str, expected: str) -> None:
    assert redact(url) == expected


def _emit(logger_name: str, msg: str, *args: object) -> dict[str, object]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter("json"))
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(msg, *args)
    finally:
        logger.removeHandler(handler)
    line: dict[str, object] = json.loads(stream.getvalue())
    return line


def test_any_record_with_a_key_in_a_url_is_redacted() -> None:
    """httpx, for one, logs every request's URL at INFO."""
    line = _emit("tests.logs.any", "HTTP Request: %s %s", "POST", "https://h/hook?api_key=s3cr3t")
    assert line["message"] == "HTTP Request: POST https://h/hook?api_key=[REDACTED]"


def test_access_records_get_fields() -> None:
    args = ("10.0.0.1:5000", "GET", "/v1/x?api_key=s3cr3t", "1.1", 401)
    line = _emit("uvicorn.access", '%s - "%s %s HTTP/%s" %d', *args)
    assert line["http_path"] == "/v1/x?api_key=[REDACTED]"
    assert line["http_status"] == 401
    assert "s3cr3t" not in json.dumps(line)
