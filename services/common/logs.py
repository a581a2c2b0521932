"""Process-wide logging of a service: one line per record on stdout, JSON lines or text.

Container platforms collect stdout, and a log pipeline (Loki, Elasticsearch, CloudWatch) parses
JSON lines without a grammar per service, so JSON is the default; ``text`` is for a person at a
terminal. Everything goes through the standard ``logging`` module (our code, uvicorn's access and
error logs, aiokafka, SQLAlchemy), so one formatter on the root handler is the whole set-up:
python-json-logger is that formatter, where structlog would bring a second logging API that the
libraries we depend on do not use.

API keys belong in the ``Authorization`` header, but a client may still put one in a URL
(``?api_key=…``, as some webhook configurations do). :class:`RedactSecrets` replaces such values
in every record before it is written, access log included.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Literal

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

LogFormat = Literal["json", "text"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
REDACTED = "[REDACTED]"
# a query parameter named api_key (also percent-encoded as api%5Fkey), up to the next & or space
_SECRET_QUERY = re.compile(r"(?i)([?&;](?:api_key|api%5fkey)=)[^&;#\s\"]*")


def redact(text: str) -> str:
    """``text`` with the value of every ``api_key`` query parameter replaced."""
    return _SECRET_QUERY.sub(rf"\g<1>{REDACTED}", text)


class RedactSecrets(logging.Filter):
    """Redacts API keys from a record's message, and gives access records structured fields.

    uvicorn's access record carries (client, method, path with query, HTTP version, status) as
    arguments; the path is redacted and the five become fields of the JSON line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            if len(record.args) == 5:
                client, method, path, version, status = record.args
                path = redact(str(path))
                record.args = (client, method, path, version, status)
                record.client_addr = client
                record.http_method = method
                record.http_path = path
                record.http_status = status
            return True
        message = record.getMessage()
        if "api" in message.lower():
            cleaned = redact(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return True


def formatter(fmt: LogFormat) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            datefmt="%Y-%m-%dT%H:%M:%S%z",
            # uvicorn's copy of the message with terminal colours
            reserved_attrs=[*RESERVED_ATTRS, "color_message", "taskName"],
        )
    return logging.Formatter(TEXT_FORMAT)


def configure_logging(fmt: LogFormat = "json", level: str = "INFO") -> None:
    """Send every record at ``level`` and above to stdout in ``fmt``, redacted (idempotent)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's loggers propagate to the root when it is not given a log_config
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
