"""The embedded mode's command-line glue: Ctrl-C and shutdown logging."""

from __future__ import annotations

import asyncio
import logging
import signal

import pytest

from spm.devcli import CancelledCheckinFilter, restore_ctrl_c


def _record(name: str, exc: BaseException) -> logging.LogRecord:
    return logging.LogRecord(
        name,
        logging.ERROR,
        __file__,
        1,
        "Exception during reset or similar",
        None,
        (type(exc), exc, None),
    )


def test_a_cancelled_connection_checkin_is_one_warning_line() -> None:
    record = _record("sqlalchemy.pool.impl.AsyncAdaptedQueuePool", asyncio.CancelledError())
    assert CancelledCheckinFilter().filter(record)
    assert record.exc_info is None
    assert record.levelname == "WARNING"
    assert "cancelled at shutdown" in record.getMessage()


@pytest.mark.parametrize(
    ("name", "exc"),
    [
        ("sqlalchemy.pool.impl.AsyncAdaptedQueuePool", RuntimeError("disk I/O error")),
        ("services.ingest", asyncio.CancelledError()),
    ],
)
def test_other_errors_keep_their_traceback(name: str, exc: BaseException) -> None:
    record = _record(name, exc)
    assert CancelledCheckinFilter().filter(record)
    assert record.exc_info is not None and record.levelname == "ERROR"


def test_ctrl_c_is_restored_when_inherited_as_ignored() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        restore_ctrl_c()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        signal.signal(signal.SIGINT, handler := (lambda *_: None))
        restore_ctrl_c()  # a handler someone installed is left alone
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, previous)
