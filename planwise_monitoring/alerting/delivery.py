"""Alert delivery: channels that send, and a dispatcher that decides, records, sends and retries.

Policy (routing, dedup, throttle) is :mod:`planwise_monitoring.alerting.policy`; this module is the
I/O at the edge. The notification log is ``mon_alerts``: one row per (alert, channel), with status
``pending`` → ``sent``, or ``failed`` after ``max_attempts`` tries, or ``suppressed`` for an alert
deduplicated or throttled away (every alert is recorded, sent or not)::

    from planwise_monitoring.alerting.delivery import AlertDispatcher
    from planwise_monitoring.alerting.policy import load_alert_config
    from planwise_monitoring.store.duckdb import MonitoringStore

    dispatcher = AlertDispatcher(MonitoringStore("monitoring.duckdb"), load_alert_config("alerts.yaml"),
                                 context.log)
    report = dispatcher.dispatch(alerts)   # decide + record, send, record the outcome
    report = dispatcher.retry_pending()    # every sensor tick: resend what a down channel missed
    context.log.info(str(report))          # "1 sent, 0 pending, 0 failed, 2 suppressed"

A dispatch holds the database only twice, briefly: once to read the notification log and record the
decisions, once to record the outcomes. Network I/O happens in between with no connection open,
because DuckDB lets one process at a time write the file.

Guarantees, and what they cost:

- Nothing raises out of :meth:`AlertDispatcher.dispatch` or :meth:`AlertDispatcher.retry_pending`
  because of a channel OR of the database (a sensor must never crash on alerting). Channel errors
  are recorded on the row; a database error (e.g. :class:`~planwise_monitoring.store.duckdb.StoreLockedError`)
  is logged and returned in :attr:`DispatchReport.store_error`. If the decisions cannot be recorded,
  the alerts are sent anyway without throttling (a lost alert is worse than a repeated one) and
  recorded with the outcomes if the database is back by then.
- Delivery is at least once: if the outcomes cannot be recorded, the rows stay ``pending`` with no
  attempts and :meth:`~AlertDispatcher.retry_pending` sends them again after ``in_flight_grace_seconds``.
  Webhook payloads carry ``alert_id`` so a receiver can drop repeats. Call ``retry_pending`` from one
  sensor only: two concurrent retriers may both send the same row.
- Each tick tries a row at most ``attempts_per_tick`` times, with exponential backoff from
  ``retry_backoff_seconds``, within ``channel_budget_seconds`` per channel (channels run in
  parallel); a channel that fails every try of a row is not tried again for other rows in the same
  tick. ``attempts`` counts every try; at ``max_attempts`` the row is ``failed``. A ``failed`` row
  still counts in the throttle window, like a sent one.
- Secrets: URLs and SMTP credentials are read from the environment at send time and never appear
  in an error: messages are written without them, then scrubbed of the channel's secret values and
  passed through :func:`~planwise_monitoring.redaction.redact`. Alert titles, messages and details
  are redacted before they are stored or sent.
- Retries rebuild the alert from its row, which has no ``details``: a retried delivery has none.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import http.client
import json
import logging
import os
import smtplib
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import duckdb

from .policy import (
    Alert,
    AlertConfig,
    ChannelConfig,
    ChannelType,
    Severity,
    fingerprints,
    route,
    should_send,
)
from ..recording.measure import utcnow
from ..redaction import redact
from ..store.duckdb import MonitoringStore, StoreError

DEFAULT_TIMEOUT_SECONDS = 3.0  # per network operation; a sensor tick must stay short
ATTEMPTS_PER_TICK = 3
CHANNEL_BUDGET_SECONDS = 5.0
IN_FLIGHT_GRACE_SECONDS = 60.0
PENDING_BATCH = 500
_ERROR_LIMIT = 500  # characters of last_error
_BODY_SNIPPET = 200  # characters of an error response quoted in last_error
_MIN_SECRET_PART = 8  # URL path segments this long are scrubbed too: tokens live in them
_STORE_ERRORS = (StoreError, duckdb.Error, OSError)

PENDING, SENT, FAILED, SUPPRESSED = "pending", "sent", "failed", "suppressed"


class DeliveryError(Exception):
    """A channel could not deliver an alert. The message is safe to store and log: it names
    environment variables, never their values."""


class Logger(Protocol):
    """What a channel and the dispatcher need of a logger: a ``logging.Logger`` or Dagster's ``context.log``."""

    def info(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...
    def warning(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...
    def error(self, msg: str, *args: Any, **kwargs: Any) -> Any: ...


def scrub(text: str, secrets: Sequence[str] = ()) -> str:
    """Mask ``secrets`` (longest first, so a URL goes before its parts), then redact env secrets."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return redact(text) or ""


def redact_alert(alert: Alert) -> Alert:
    """The alert with secret environment values masked in its text and string details."""
    return dataclasses.replace(
        alert, title=redact(alert.title) or alert.title, message=redact(alert.message) or "",
        details=tuple((k, redact(v) if isinstance(v, str) else v) for k, v in alert.details),
    )


def _env(channel: str, variable: str, holds: str) -> str:
    value = os.environ.get(variable, "").strip()
    if not value:
        raise DeliveryError(f"channel {channel!r}: environment variable {variable} is not set (it should hold {holds})")
    return value


def _url_secrets(url: str) -> list[str]:
    """A URL and the parts of it that could show up alone in an error (tokens live in the path)."""
    parts = urllib.parse.urlsplit(url)
    found = [url, url.split("://", 1)[-1], parts.path, parts.query, urllib.parse.unquote(parts.path)]
    if parts.password:
        found.append(parts.password)
    found += [p for p in parts.path.split("/") if len(p) >= _MIN_SECRET_PART]
    found += [v for _, v in urllib.parse.parse_qsl(parts.query) if len(v) >= _MIN_SECRET_PART]
    return [f for f in found if f and f != "/"]


class Channel:
    """Sends one alert or raises :class:`DeliveryError`. ``timeout_seconds`` is None for local channels."""

    kind = "channel"
    timeout_seconds: float | None = None

    def __init__(self, name: str):
        self.name = name

    def send(self, alert: Alert, *, alert_id: str | None = None, timeout: float | None = None) -> None:
        raise NotImplementedError

    def secrets(self) -> list[str]:
        """Values to keep out of any text: those of the environment variables this channel reads."""
        return []

    def _error(self, what: str) -> DeliveryError:
        return DeliveryError(scrub(f"{self.kind} channel {self.name!r}: {what}", self.secrets())[:_ERROR_LIMIT])


class LogChannel(Channel):
    """Logs the alert on a logger (a Dagster ``context.log`` in a sensor), at a level by severity."""

    kind = "log"
    _LEVELS = {Severity.INFO: "info", Severity.WARNING: "warning", Severity.ERROR: "error",
               Severity.CRITICAL: "critical"}

    def __init__(self, name: str, logger: Logger):
        super().__init__(name)
        self.logger = logger

    def send(self, alert: Alert, *, alert_id: str | None = None, timeout: float | None = None) -> None:
        alert = redact_alert(alert)
        log = getattr(self.logger, self._LEVELS[alert.severity], None) or self.logger.error
        try:
            log(f"planwise alert [{alert.severity.value}] {alert.title}: {alert.message}")
        except Exception as exc:  # a broken handler is this channel's failure, not the caller's
            raise self._error(f"logging failed: {type(exc).__name__}: {exc}") from None


class FileChannel(Channel):
    """Appends one JSON line per alert (``alert.to_dict()`` plus ``alert_id`` and ``written_at``).
    A relative path is relative to the working directory of the process that sends."""

    kind = "file"

    def __init__(self, name: str, path: str | Path):
        super().__init__(name)
        self.path = Path(path)

    def send(self, alert: Alert, *, alert_id: str | None = None, timeout: float | None = None) -> None:
        record = {**redact_alert(alert).to_dict(), "alert_id": alert_id, "written_at": utcnow().isoformat()}
        line = json.dumps(record, sort_keys=True, default=str) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # one write() of a whole line in append mode: concurrent writers do not interleave lines
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(line)
        except OSError as exc:
            raise self._error(f"cannot append to {self.path}: {exc.strerror or exc}") from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would turn a redirected POST into a GET without the body: treat 3xx as an error instead.
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)  # honours http(s)_proxy / no_proxy like urlopen


class WebhookChannel(Channel):
    """POSTs ``alert.to_dict()`` (plus ``alert_id``) as JSON to the URL in ``$url_env``; non-2xx is an error."""

    kind = "webhook"

    def __init__(self, name: str, url_env: str, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS):
        super().__init__(name)
        self.url_env = url_env
        self.timeout_seconds = timeout_seconds

    def secrets(self) -> list[str]:
        url = os.environ.get(self.url_env, "").strip()
        return _url_secrets(url) if url else []

    def payload(self, alert: Alert, alert_id: str | None) -> dict[str, Any]:
        return {**alert.to_dict(), "alert_id": alert_id}

    def send(self, alert: Alert, *, alert_id: str | None = None, timeout: float | None = None) -> None:
        self.post(self.payload(redact_alert(alert), alert_id), timeout or self.timeout_seconds)

    def post(self, payload: dict[str, Any], timeout: float) -> str:
        """POST JSON; returns the response body. Errors name ``$url_env``, never the URL."""
        url = _env(self.name, self.url_env, "the webhook URL")
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise self._error(f"${self.url_env} does not hold an http(s) URL")
        where = f"POST to ${self.url_env}"
        request = urllib.request.Request(
            url, data=json.dumps(payload, default=str).encode(), method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "planwise-monitoring"},
        )
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                body = response.read(64 * 1024).decode("utf-8", "replace")
                status = response.status
        except urllib.error.HTTPError as exc:
            raise self._error(f"{where} answered HTTP {exc.code} {exc.reason}{_snippet(exc)}") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise self._error(f"{where} timed out after {timeout:g}s") from None
            raise self._error(f"{where} failed: {_describe(reason)}") from None
        except (TimeoutError, socket.timeout):
            raise self._error(f"{where} timed out after {timeout:g}s") from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise self._error(f"{where} failed: {_describe(exc)}") from None
        if not 200 <= status < 300:
            raise self._error(f"{where} answered HTTP {status}")
        return body


def _describe(exc: object) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, BaseException):
        text = getattr(exc, "strerror", None) or str(exc)
        return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return str(exc)


def _snippet(exc: urllib.error.HTTPError) -> str:
    try:
        body = exc.read(2048).decode("utf-8", "replace")
    except Exception:  # the body is a nicety; the status line is the error
        return ""
    body = " ".join(body.split())[:_BODY_SNIPPET]
    return f": {body}" if body else ""


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackChannel(WebhookChannel):
    """A Slack incoming webhook: ``{"text": ..., "blocks": [...]}``; Slack answers ``ok``."""

    kind = "slack"
    _SECTION_LIMIT = 2900  # Slack rejects section text over 3000 characters

    def payload(self, alert: Alert, alert_id: str | None) -> dict[str, Any]:
        title, message = _slack_escape(alert.title), _slack_escape(alert.message)
        where = " · ".join(str(x) for x in (alert.component_name, alert.simulation_year, alert.scenario) if x)
        context = f"{alert.severity.value} · {alert.alert_type.value}" + (f" · {_slack_escape(where)}" if where else "")
        return {
            "text": f"[{alert.severity.value}] {title}\n{message}",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*\n{message}"[:self._SECTION_LIMIT]}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
            ],
        }


class EmailChannel(Channel):
    """A plain-text mail over SMTP, subject = the alert's title. Logs in only when the channel names
    ``username_env``/``password_env``; STARTTLS when ``starttls``."""

    kind = "email"

    def __init__(self, name: str, host: str, port: int, sender: str, recipients: Sequence[str], *,
                 username_env: str | None = None, password_env: str | None = None, starttls: bool = False,
                 timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS):
        super().__init__(name)
        self.host, self.port, self.sender, self.recipients = host, port, sender, tuple(recipients)
        self.username_env, self.password_env = username_env, password_env
        self.starttls, self.timeout_seconds = starttls, timeout_seconds

    def secrets(self) -> list[str]:
        return [v for v in [os.environ.get(self.password_env or "", "")] if v]

    def message(self, alert: Alert, alert_id: str | None) -> EmailMessage:
        mail = EmailMessage()
        mail["Subject"] = " ".join(alert.title.split())  # a header is one line
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        lines = [alert.message, "", f"severity: {alert.severity.value}", f"type: {alert.alert_type.value}",
                 f"component: {alert.component_name or '-'}", f"year: {alert.simulation_year or '-'}",
                 f"scenario: {alert.scenario}"]
        lines += [f"{label}: {value}" for label, value in [("run", alert.simulation_run_id),
                                                           ("performance_id", alert.performance_id),
                                                           ("alert_id", alert_id)] if value]
        lines += [f"{k}: {v}" for k, v in alert.details]
        mail.set_content("\n".join(lines) + "\n")
        return mail

    def send(self, alert: Alert, *, alert_id: str | None = None, timeout: float | None = None) -> None:
        credentials = None
        if self.username_env and self.password_env:
            credentials = (_env(self.name, self.username_env, "the SMTP user name"),
                           _env(self.name, self.password_env, "the SMTP password"))
        mail = self.message(redact_alert(alert), alert_id)
        timeout = timeout or self.timeout_seconds
        where = f"SMTP {self.host}:{self.port}"
        try:
            with smtplib.SMTP(self.host, self.port, timeout=timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if credentials:
                    smtp.login(*credentials)
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            raise self._error(f"{where} refused every recipient: {sorted(exc.recipients)}") from None
        except smtplib.SMTPResponseException as exc:
            reply = exc.smtp_error
            reply = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
            what = "login failed" if isinstance(exc, smtplib.SMTPAuthenticationError) else "error"
            raise self._error(f"{where} {what}: {exc.smtp_code} {' '.join(reply.split())[:_BODY_SNIPPET]}") from None
        except (TimeoutError, socket.timeout):
            raise self._error(f"{where} timed out after {timeout:g}s") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise self._error(f"{where} failed: {_describe(exc)}") from None


def build_channel(config: ChannelConfig, logger: Logger) -> Channel:
    """The channel a :class:`ChannelConfig` describes; nothing is read from the environment yet."""
    o = config.options
    timeout = o.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
    if config.type is ChannelType.LOG:
        return LogChannel(config.name, logger)
    if config.type is ChannelType.FILE:
        return FileChannel(config.name, o["path"])
    if config.type is ChannelType.WEBHOOK:
        return WebhookChannel(config.name, o["url_env"], timeout)
    if config.type is ChannelType.SLACK:
        return SlackChannel(config.name, o["url_env"], timeout)
    if config.type is ChannelType.EMAIL:
        return EmailChannel(config.name, o["host"], o.get("port", 25), o["from"], o["to"],
                            username_env=o.get("username_env"), password_env=o.get("password_env"),
                            starttls=o.get("starttls", False), timeout_seconds=timeout)
    raise ValueError(f"channel {config.name!r}: unknown type {config.type!r}")  # unreachable: ChannelType is closed


# -- the dispatcher ------------------------------------------------------------------------------

@dataclass(frozen=True)
class DispatchReport:
    """What a dispatch or retry did, counted in deliveries (rows: one per alert and channel)."""

    sent: int = 0
    pending: int = 0  # still to deliver: tried and failed but retryable, or not reached this tick
    failed: int = 0  # gave up after max_attempts
    suppressed: int = 0  # deduplicated or throttled: recorded, not sent
    errors: tuple[str, ...] = ()  # the (redacted) delivery errors of this call
    store_error: str | None = None  # the database could not be read or written (see the module docstring)

    def __str__(self) -> str:
        text = f"{self.sent} sent, {self.pending} pending, {self.failed} failed, {self.suppressed} suppressed"
        return text + (f"; monitoring database unavailable: {self.store_error}" if self.store_error else "")


@dataclass
class _Delivery:
    """One row's delivery: what to send, and (after the attempt) what happened."""

    alert: Alert
    alert_id: str
    channel: str
    attempts: int = 0
    status: str = PENDING
    last_error: str | None = None
    sent_at: datetime | None = None
    tried: bool = False  # False: not reached this tick, the row is unchanged


def _row(alert: Alert, alert_id: str, channel: str, status: str, created_at: datetime) -> dict[str, Any]:
    return {
        "alert_id": alert_id, "channel": channel, "fingerprint": alert.fingerprint,
        "alert_type": alert.alert_type.value, "severity": alert.severity.value,
        "component_name": alert.component_name, "simulation_year": alert.simulation_year,
        "scenario": alert.scenario, "simulation_run_id": alert.simulation_run_id,
        "performance_id": alert.performance_id, "title": alert.title, "message": alert.message,
        "status": status, "attempts": 0, "last_error": None, "created_at": created_at,
        "sent_at": None, "acknowledged_at": None,
    }


def _alert_from_row(row: dict[str, Any]) -> Alert:
    return Alert(
        alert_type=row["alert_type"], severity=row["severity"], component_name=row["component_name"],
        simulation_year=row["simulation_year"], scenario=row["scenario"] or "", title=row["title"],
        message=row["message"], simulation_run_id=row["simulation_run_id"],
        performance_id=None if row["performance_id"] is None else str(row["performance_id"]),
    )


class AlertDispatcher:
    """Routes, deduplicates, records and delivers alerts; see the module docstring. Build one per
    sensor tick: a row this dispatcher already tried is not retried by its own ``retry_pending``."""

    def __init__(self, store: MonitoringStore, config: AlertConfig, logger: Logger | None = None,
                 clock: Callable[[], datetime] = utcnow, *, attempts_per_tick: int = ATTEMPTS_PER_TICK,
                 channel_budget_seconds: float = CHANNEL_BUDGET_SECONDS,
                 in_flight_grace_seconds: float = IN_FLIGHT_GRACE_SECONDS,
                 sleep: Callable[[float], None] = time.sleep):
        self.store = store
        self.config = config
        self.logger: Logger = logger if logger is not None else logging.getLogger("planwise_monitoring.alerts")
        self.clock = clock
        self.attempts_per_tick = max(1, attempts_per_tick)
        self.channel_budget_seconds = channel_budget_seconds
        self.in_flight_grace_seconds = in_flight_grace_seconds
        self.sleep = sleep
        self.channels: dict[str, Channel] = {name: build_channel(c, self.logger) for name, c in config.channels.items()}
        self._tried: set[tuple[str, str]] = set()

    def _now(self) -> datetime:
        now = self.clock()
        # mon_alerts holds naive UTC; an aware clock is converted rather than compared and failing
        return now.astimezone(timezone.utc).replace(tzinfo=None) if now.tzinfo else now

    # -- the two entry points -----------------------------------------------------------------
    def dispatch(self, alerts: Sequence[Alert]) -> DispatchReport:
        """Decide (dedup, throttle, route) and record each alert, deliver, record the outcomes."""
        alerts = [redact_alert(a) for a in alerts]
        if not alerts:
            return DispatchReport()
        now = self._now()
        store_error = None
        try:
            with self.store.session() as session:
                last = session.last_alerts(fingerprints(alerts))
                rows, deliveries = self._decide(alerts, last, now)
                session.insert_alerts(rows)
            recorded = True
        except _STORE_ERRORS as exc:
            store_error = self._store_failed(exc, "could not check the notification log; sending without throttling")
            rows, deliveries = self._decide(alerts, {}, now)
            recorded = False
        self._deliver(deliveries)
        by_key = {(d.alert_id, d.channel): d for d in deliveries}
        try:
            with self.store.session() as session:
                if recorded:
                    self._record(session, deliveries)
                else:  # the decisions were never stored: store them now, with the outcomes
                    session.insert_alerts([self._with_outcome(r, by_key.get((r["alert_id"], r["channel"])))
                                           for r in rows])
        except _STORE_ERRORS as exc:
            store_error = self._store_failed(exc, "could not record delivery outcomes (pending deliveries will "
                                                  "be sent again by retry_pending)")
        suppressed = sum(r["status"] == SUPPRESSED for r in rows)
        return self._report(deliveries, suppressed, store_error)

    def retry_pending(self, limit: int = PENDING_BATCH) -> DispatchReport:
        """Deliver the rows still ``pending`` (a channel was down, a tick ran out of time), oldest first."""
        now = self._now()
        try:
            with self.store.session() as session:
                rows = session.pending_deliveries(limit)
        except _STORE_ERRORS as exc:
            return DispatchReport(store_error=self._store_failed(exc, "could not read pending deliveries"))
        deliveries, unknown = [], set()
        for row in rows:
            alert_id = str(row["alert_id"])
            if (alert_id, row["channel"]) in self._tried:
                continue  # tried by this dispatcher's dispatch() moments ago: next tick
            if row["attempts"] == 0 and (now - row["created_at"]).total_seconds() < self.in_flight_grace_seconds:
                continue  # just recorded by a dispatch that is probably delivering it right now
            if row["channel"] not in self.channels:
                unknown.add(row["channel"])  # another dispatcher's channel, or one removed from the config
                continue
            try:
                alert = _alert_from_row(row)
            except ValueError as exc:  # a row this module did not write: give up on it, visibly
                deliveries.append(_Delivery(None, alert_id, row["channel"], row["attempts"],  # type: ignore[arg-type]
                                            FAILED, redact(f"cannot rebuild the alert from its row: {exc}"),
                                            tried=True))
                continue
            deliveries.append(_Delivery(alert, alert_id, row["channel"], row["attempts"], last_error=row["last_error"]))
        if unknown:
            self.logger.warning(f"planwise alerts: pending deliveries to channel(s) {sorted(unknown)}, which this "
                                "alert configuration does not define, are left alone (acknowledge them with "
                                "`planwise-monitoring alerts ack ID` if the channel is gone)")
        if not deliveries:
            return DispatchReport()
        self._deliver(deliveries)
        store_error = None
        try:
            with self.store.session() as session:
                self._record(session, deliveries)
        except _STORE_ERRORS as exc:
            store_error = self._store_failed(exc, "could not record delivery outcomes")
        return self._report(deliveries, 0, store_error)

    # -- stages ------------------------------------------------------------------------------
    def _decide(self, alerts: Sequence[Alert], last: dict[str, datetime],
                now: datetime) -> tuple[list[dict[str, Any]], list[_Delivery]]:
        """The rows to record and the deliveries to make. A fingerprint seen earlier in the same
        batch is suppressed whatever the throttle: it is the same event reported twice."""
        rows, deliveries, seen = [], [], set()
        for alert in alerts:
            fp = alert.fingerprint
            send = fp not in seen and should_send(alert, last.get(fp), now, self.config.throttle_seconds)
            seen.add(fp)
            alert_id = str(uuid.uuid4())
            for channel in route(alert, self.config):
                rows.append(_row(alert, alert_id, channel, PENDING if send else SUPPRESSED, now))
                if send:
                    deliveries.append(_Delivery(alert, alert_id, channel))
        return rows, deliveries

    def _deliver(self, deliveries: Sequence[_Delivery]) -> None:
        """Try every delivery; channels in parallel (each within its budget), local ones inline."""
        by_channel: dict[str, list[_Delivery]] = {}
        for d in deliveries:
            if not d.tried:
                by_channel.setdefault(d.channel, []).append(d)
        remote = {n: ds for n, ds in by_channel.items() if self.channels[n].timeout_seconds is not None}
        for name, ds in by_channel.items():
            if name not in remote:
                self._deliver_channel(self.channels[name], ds)
        if len(remote) == 1:
            [(name, ds)] = remote.items()
            self._deliver_channel(self.channels[name], ds)
        elif remote:
            with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(remote)),
                                                       thread_name_prefix="planwise-alerts") as pool:
                for future in [pool.submit(self._deliver_channel, self.channels[n], ds) for n, ds in remote.items()]:
                    future.result()
        for d in deliveries:
            if d.tried:
                self._tried.add((d.alert_id, d.channel))
                self._log_outcome(d)

    def _deliver_channel(self, channel: Channel, deliveries: Sequence[_Delivery]) -> None:
        deadline = time.monotonic() + self.channel_budget_seconds
        for d in deliveries:
            if time.monotonic() >= deadline:
                return  # out of time: the rest stay pending, untouched, for the next tick
            if not self._attempt(channel, d, deadline):
                return  # the channel failed every try: likely down, spare the other rows this tick

    def _attempt(self, channel: Channel, d: _Delivery, deadline: float) -> bool:
        """Up to ``attempts_per_tick`` tries with exponential backoff; False if every try failed."""
        d.tried = True
        max_attempts = self.config.max_attempts
        for k in range(min(self.attempts_per_tick, max_attempts - d.attempts)):
            if k:
                pause = self.config.retry_backoff_seconds * 2 ** (k - 1)
                if time.monotonic() + pause >= deadline:
                    break
                self.sleep(pause)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            timeout = min(channel.timeout_seconds, remaining) if channel.timeout_seconds else None
            d.attempts += 1
            try:
                channel.send(d.alert, alert_id=d.alert_id, timeout=timeout)
            except DeliveryError as exc:
                d.last_error = scrub(str(exc), channel.secrets())[:_ERROR_LIMIT]
            except Exception as exc:  # a bug in a channel must not crash the sensor either
                d.last_error = scrub(f"{channel.kind} channel {channel.name!r}: {type(exc).__name__}: {exc}",
                                     channel.secrets())[:_ERROR_LIMIT]
            else:
                d.status, d.last_error, d.sent_at = SENT, None, self._now()
                return True
        d.status = FAILED if d.attempts >= max_attempts else PENDING
        return False

    def _record(self, session, deliveries: Sequence[_Delivery]) -> None:
        for d in deliveries:
            if d.tried:
                session.update_alert(d.alert_id, d.channel, d.status, d.attempts, d.last_error, d.sent_at)

    @staticmethod
    def _with_outcome(row: dict[str, Any], d: _Delivery | None) -> dict[str, Any]:
        if d is None or not d.tried:
            return row
        return {**row, "status": d.status, "attempts": d.attempts, "last_error": d.last_error, "sent_at": d.sent_at}

    # -- reporting ---------------------------------------------------------------------------
    def _log_outcome(self, d: _Delivery) -> None:
        what = f"planwise alert {d.alert_id[:8]} to channel {d.channel!r}"
        if d.status == FAILED:
            self.logger.error(f"{what}: gave up after {d.attempts} attempt(s): {d.last_error}")
        elif d.status == PENDING:
            self.logger.warning(f"{what}: attempt {d.attempts} of {self.config.max_attempts} failed, "
                                f"will retry: {d.last_error}")

    def _store_failed(self, exc: BaseException, what: str) -> str:
        message = redact(f"{type(exc).__name__}: {exc}") or type(exc).__name__
        self.logger.warning(f"planwise alerts: {what}: {message}")
        return message

    @staticmethod
    def _report(deliveries: Sequence[_Delivery], suppressed: int, store_error: str | None) -> DispatchReport:
        count = {s: sum(d.status == s for d in deliveries) for s in (SENT, PENDING, FAILED)}
        errors = tuple(f"{d.channel}: {d.last_error}" for d in deliveries
                       if d.tried and d.status != SENT and d.last_error)
        return DispatchReport(sent=count[SENT], pending=count[PENDING], failed=count[FAILED],
                              suppressed=suppressed, errors=errors, store_error=store_error)
