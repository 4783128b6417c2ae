"""The alert dispatcher: decides, records, sends and retries; the channels are :mod:`.channels`.

Policy (routing, dedup, throttle) is :mod:`planwise_monitoring.alerting.policy`; this module is the
I/O at the edge. The notification log is ``mon_alerts``: one row per (alert, channel), with status
``pending`` → ``sent``, or ``failed`` after ``max_attempts`` tries, or ``suppressed`` for an alert
deduplicated or throttled away (every alert is recorded, sent or not)::

    from planwise_monitoring.alerting.dispatcher import AlertDispatcher
    from planwise_monitoring.alerting.policy import load_alert_config
    from planwise_monitoring.store import MonitoringStore

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
  are recorded on the row; a database error (e.g. :class:`~planwise_monitoring.store.StoreLockedError`)
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
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..recording.measure import utcnow
from ..redaction import redact
from ..store import MonitoringStore
from .apprise_channel import AppriseChannel
from .channels import (
    DEFAULT_TIMEOUT_SECONDS,
    ERROR_LIMIT,
    Channel,
    DeliveryError,
    EmailChannel,
    FileChannel,
    LogChannel,
    Logger,
    SlackChannel,
    WebhookChannel,
    redact_alert,
    scrub,
)
from .policy import Alert, AlertConfig, ChannelConfig, ChannelType, fingerprints, route, should_send

ATTEMPTS_PER_TICK = 3
CHANNEL_BUDGET_SECONDS = 5.0
IN_FLIGHT_GRACE_SECONDS = 60.0
PENDING_BATCH = 500

PENDING, SENT, FAILED, SUPPRESSED = "pending", "sent", "failed", "suppressed"


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
    if config.type is ChannelType.APPRISE:
        return AppriseChannel(config.name, o["url_env"], timeout)
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
        # what a session of this store raises when the database cannot serve it (see MonitoringStore)
        self._store_errors = store.unavailable_errors

    def _now(self) -> datetime:
        now = self.clock()
        # mon_alerts holds naive UTC; an aware clock is converted rather than compared and failing
        return now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now

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
        except self._store_errors as exc:
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
        except self._store_errors as exc:
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
        except self._store_errors as exc:
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
        except self._store_errors as exc:
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
                d.last_error = scrub(str(exc), channel.secrets())[:ERROR_LIMIT]
            except Exception as exc:  # a bug in a channel must not crash the sensor either
                d.last_error = scrub(f"{channel.kind} channel {channel.name!r}: {type(exc).__name__}: {exc}",
                                     channel.secrets())[:ERROR_LIMIT]
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

