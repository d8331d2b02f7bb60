"""Logs: a business refusal is one line; a real error keeps its traceback."""

from __future__ import annotations

import logging
import sys

from temporalio.exceptions import ApplicationError

from activities.observability import StructuredFormatter, business_failures_without_traceback


def record_for(error: BaseException) -> logging.LogRecord:
    try:
        raise error
    except BaseException:
        info = sys.exc_info()
    return logging.LogRecord("temporalio.activity", logging.WARNING, __file__, 1, "Completing activity as failed (%s)",
                             ({"activity_type": "validation"},), info)  # fmt: skip


def test_a_business_refusal_is_logged_in_one_line() -> None:
    record = record_for(
        ApplicationError("validation failed: 100% over budget", type="ValidationFailed", non_retryable=True)
    )
    assert business_failures_without_traceback(record)
    text = StructuredFormatter("text").format(record)
    assert "Traceback" not in text and "\n" not in text.strip()
    assert "ValidationFailed: validation failed: 100% over budget" in text


def test_a_real_error_keeps_its_traceback() -> None:
    record = record_for(RuntimeError("database went away"))
    assert business_failures_without_traceback(record)
    assert "Traceback" in StructuredFormatter("text").format(record)
