"""Metrics and structured logs of a worker.

Metrics. With ``PLAYBOOK_METRICS_PORT`` set (a port, or ``host:port``), the worker's Temporal runtime serves
Prometheus metrics on ``http://<host>:<port>/metrics`` (host ``0.0.0.0`` when only a port is given): the SDK's
own (``temporal_workflow_completed``, ``temporal_activity_execution_latency``, ... with durations in
seconds) and the engine's step metrics, recorded by `StepTelemetry` for every attempt of an automated step:

- ``playbook_steps_total{playbook, step_type, outcome}``: a counter;
- ``playbook_step_duration_seconds{playbook, step_type, outcome}``: a histogram.

- ``playbook_signals_dropped_total{signal}``: signals the SDK dropped before any workflow handler saw them
  (each also logged once, as one line naming the workflow id). The workflow reads every signal raw and
  records a malformed one in ``status.rejected``, so this stays 0 unless the SDK itself fails on one.

``outcome`` is ``completed``, ``failed`` (the step fails: the error is not retryable or it was the last
attempt), ``retrying`` (the attempt failed and Temporal will try again) or ``cancelled``. Unset, no port
is opened: several workers on one host would otherwise collide on it.

Logs. `configure_logging` installs one handler whose format ``PLAYBOOK_LOG_FORMAT`` picks: ``text``
(default: a readable line followed by ``key=value`` fields) or ``json`` (one object per line, for log
shippers). Each step attempt logs one line with ``execution_id``, ``step_id``, ``organization_id``,
``playbook``, ``step_type``, ``attempt``, ``outcome`` and ``duration_s``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.common import MetricMeter
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from model.execution import StepRequest

__all__ = [
    "LOG_FORMAT_ENV",
    "METRICS_PORT_ENV",
    "SIGNALS_DROPPED",
    "STEP_COUNTER",
    "STEP_DURATION",
    "DroppedSignals",
    "StepTelemetry",
    "StructuredFormatter",
    "configure_logging",
    "metrics_address",
    "metrics_runtime",
]

METRICS_PORT_ENV = "PLAYBOOK_METRICS_PORT"
"""Environment variable: the port (or host:port) of the worker's Prometheus endpoint; unset: none."""
LOG_FORMAT_ENV = "PLAYBOOK_LOG_FORMAT"
"""Environment variable: ``text`` (default) or ``json``."""
STEP_COUNTER = "playbook_steps_total"
STEP_DURATION = "playbook_step_duration_seconds"
SIGNALS_DROPPED = "playbook_signals_dropped_total"
SDK_WORKFLOW_LOGGER = "temporalio.worker._workflow_instance"
"""Where the SDK logs a signal it drops (``Failed deserializing signal input … dropping the signal``)."""
# Steps range from a few milliseconds (a set of rows) to minutes (a slow API behind an http step).
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

log = logging.getLogger("playbook.steps")


def metrics_address(env: Mapping[str, str] = os.environ) -> str | None:
    """The ``host:port`` the Prometheus endpoint binds, from ``PLAYBOOK_METRICS_PORT``; None when unset."""
    value = env.get(METRICS_PORT_ENV, "").strip()
    if not value:
        return None
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{METRICS_PORT_ENV}: {value!r} is not a port number (e.g. 9464) or host:port")
    return f"{host or '0.0.0.0'}:{port}"


def metrics_runtime(bind_address: str) -> Runtime:
    """A Temporal runtime serving Prometheus metrics on `bind_address`; create one per process.

    Durations are exported in seconds, as Prometheus conventions want.
    """
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=bind_address,
                durations_as_seconds=True,
                histogram_bucket_overrides={STEP_DURATION: list(_DURATION_BUCKETS)},
            )
        )
    )


class StepTelemetry(Interceptor):
    """Counts, times and logs every attempt of a step activity (engine activities are left alone)."""

    def __init__(self, meter: MetricMeter) -> None:
        # The worker's runtime meter (a no-op one when metrics are off), so instruments are made once.
        self._steps = meter.create_counter(STEP_COUNTER, "Attempts of automated playbook steps, by outcome.")
        self._duration = meter.create_histogram_float(
            STEP_DURATION, "Duration of attempts of automated playbook steps.", "s"
        )

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _StepInbound(next, self)

    def record(self, req: StepRequest, outcome: str, seconds: float) -> None:
        """Record one attempt of `req`'s step and log it with the step's identity."""
        labels = {"playbook": req.playbook_id or "unknown", "step_type": req.step_type, "outcome": outcome}
        self._steps.add(1, labels)
        self._duration.record(seconds, labels)
        attempt = activity.info().attempt
        log.log(
            logging.WARNING if outcome in ("failed", "retrying") else logging.INFO,
            "step %s %s in %.3fs (attempt %d)", req.step_id, outcome, seconds, attempt,
            extra={
                "execution_id": req.execution_id,
                "step_id": req.step_id,
                "iteration": req.iteration or None,
                "organization_id": req.organization_uuid,
                "playbook": labels["playbook"],
                "step_type": req.step_type,
                "attempt": attempt,
                "outcome": outcome,
                "duration_s": round(seconds, 6),
            },
        )  # fmt: skip


class DroppedSignals(logging.Filter):
    """Counts the signals the SDK drops before any handler runs, and makes its traceback one line."""

    def __init__(self, meter: MetricMeter) -> None:
        super().__init__()
        self._dropped = meter.create_counter(SIGNALS_DROPPED, "Signals the SDK dropped before a workflow handler.")

    def filter(self, record: logging.LogRecord) -> bool:
        if "dropping the signal" not in record.getMessage():
            return True
        details = getattr(record, "temporal_workflow", None) or {}
        signal = record.getMessage().removeprefix("Failed deserializing signal input for ").split(" ", 1)[0]
        cause = record.exc_info[1] if record.exc_info else None
        self._dropped.add(1, {"signal": signal})
        record.msg = "signal %s to workflow %s (run %s) dropped before any handler: %s"
        record.args = (signal, details.get("workflow_id"), details.get("run_id"), cause)
        record.exc_info = record.exc_text = None
        return True

    @classmethod
    def install(cls, meter: MetricMeter) -> None:
        """One filter per process (the SDK's workflow logger serves every worker), counting on the latest meter."""
        sdk = logging.getLogger(SDK_WORKFLOW_LOGGER)
        for old in [f for f in sdk.filters if isinstance(f, cls)]:
            sdk.removeFilter(old)
        sdk.addFilter(cls(meter))


class _StepInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, telemetry: StepTelemetry) -> None:
        super().__init__(next)
        self._telemetry = telemetry

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        req = input.args[0] if input.args else None
        if not isinstance(req, StepRequest):
            return await self.next.execute_activity(input)
        began = time.monotonic()
        outcome = "failed"
        try:
            result = await self.next.execute_activity(input)
            outcome = "completed"
            return result
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception as exc:
            outcome = "retrying" if _will_retry(exc, activity.info()) else "failed"
            raise
        finally:
            self._telemetry.record(req, outcome, time.monotonic() - began)


def _will_retry(exc: Exception, info: activity.Info) -> bool:
    """Whether Temporal schedules another attempt after this one failed with `exc`."""
    if isinstance(exc, ApplicationError) and exc.non_retryable:
        return False
    policy = info.retry_policy
    if policy is None:
        return True
    if policy.maximum_attempts and info.attempt >= policy.maximum_attempts:
        return False
    kind = exc.type if isinstance(exc, ApplicationError) and exc.type else type(exc).__name__
    return kind not in (policy.non_retryable_error_types or ())


# ------------------------------------------------------------------------------------------------ logs

# Attributes every LogRecord has; anything else on a record came from `extra=` and is a structured field.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class StructuredFormatter(logging.Formatter):
    """``text``: ``<time> <LEVEL> <logger>: <message> key=value ...``; ``json``: one JSON object per line."""

    def __init__(self, fmt: str = "text") -> None:
        if fmt not in ("text", "json"):
            raise ValueError(f"{LOG_FORMAT_ENV}: {fmt!r} is neither 'text' nor 'json'")
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.json = fmt == "json"

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        if not self.json:
            line = super().format(record)
            return " ".join([line, *(f"{key}={_text(value)}" for key, value in fields.items())])
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **fields,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's `extra=` fields; one level of dicts (the SDK's activity/workflow info) flattened."""
    fields: dict[str, Any] = {}
    for key, value in record.__dict__.items():
        if key in _STANDARD or key.startswith("_") or value is None:
            continue
        if isinstance(value, dict):
            fields.update({f"{key}.{k}": v for k, v in value.items() if v is not None})
        else:
            fields[key] = value
    return fields


def _text(value: Any) -> str:
    """A value for ``key=value``: quoted when it holds spaces, quotes or equals signs."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return json.dumps(text, ensure_ascii=False) if not text or any(c in text for c in ' "=') else text


def configure_logging(level: int = logging.INFO, env: Mapping[str, str] = os.environ) -> None:
    """Route the root logger through one `StructuredFormatter` (format from ``PLAYBOOK_LOG_FORMAT``).

    For entry points: an unknown format ends the process with a one-line message.
    """
    try:
        formatter = StructuredFormatter(env.get(LOG_FORMAT_ENV, "text").strip().lower() or "text")
    except ValueError as exc:
        raise SystemExit(f"playbook: {exc}") from None
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    handler.addFilter(business_failures_without_traceback)
    logging.basicConfig(level=level, handlers=[handler], force=True)


def business_failures_without_traceback(record: logging.LogRecord) -> bool:
    """A step refused for a business reason (non-retryable) is one log line; a traceback is for real errors."""
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, ApplicationError) and error.non_retryable:
        suffix = f": {error.type}: {error.message}"
        record.msg = f"{record.msg}{suffix.replace('%', '%%') if record.args else suffix}"  # args: msg is a format
        record.exc_info = None
    return True
