"""Alert channels: where an alert goes and how it gets there (log, file, webhook, Slack, email).

Each channel sends one alert or raises :class:`DeliveryError`, whose message is safe to store and
log; the dispatcher (:mod:`planwise_monitoring.alerting.dispatcher`) decides what to send, records
it and retries. Apprise's 100+ services are :mod:`planwise_monitoring.alerting.apprise_channel`::

    import logging
    from planwise_monitoring.alerting.channels import FileChannel, LogChannel
    from planwise_monitoring.alerting.policy import Alert, AlertType, Severity

    alert = Alert(AlertType.SLA_BREACH, Severity.ERROR, "scd_workforce_state", 2026, "baseline",
                  title="scd_workforce_state 2026 breached its SLA", message="150.0s > 120.0s")
    LogChannel("log", logging.getLogger("alerts")).send(alert)
    FileChannel("audit", "alerts.jsonl").send(alert, alert_id="a-1")

Secrets: URLs and SMTP credentials are read from the environment at send time, through
:func:`~planwise_monitoring.redaction.secret_env` (which registers them for masking whatever the
variable is called), and never appear in an error: messages are written without them, then
scrubbed of the channel's secret values and passed through :func:`~planwise_monitoring.redaction.redact`.
What a channel sends is redacted too (:func:`redact_alert`).
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import smtplib
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any, ClassVar, Protocol

from ..recording.measure import utcnow
from ..redaction import redact, register_secret_env, secret_env
from .policy import Alert, Severity

DEFAULT_TIMEOUT_SECONDS = 3.0  # per network operation; a sensor tick must stay short
ERROR_LIMIT = 500  # characters of a delivery error (mon_alerts.last_error)
_BODY_SNIPPET = 200  # characters of an error response quoted in last_error
_MIN_SECRET_PART = 8  # URL path segments this long are scrubbed too: tokens live in them


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


def read_env(channel: str, variable: str, holds: str) -> str:
    """The value of ``variable``, registered for masking (every value a channel reads is a secret,
    whatever the variable is called); a missing one is a :class:`DeliveryError` naming it."""
    value = (secret_env(variable) or "").strip()
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
        return DeliveryError(scrub(f"{self.kind} channel {self.name!r}: {what}", self.secrets())[:ERROR_LIMIT])


class LogChannel(Channel):
    """Logs the alert on a logger (a Dagster ``context.log`` in a sensor), at a level by severity."""

    kind = "log"
    _LEVELS: ClassVar[dict[Severity, str]] = {Severity.INFO: "info", Severity.WARNING: "warning", Severity.ERROR: "error",
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
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)  # honours http(s)_proxy / no_proxy like urlopen


class WebhookChannel(Channel):
    """POSTs ``alert.to_dict()`` (plus ``alert_id``) as JSON to the URL in ``$url_env``; non-2xx is an error."""

    kind = "webhook"

    def __init__(self, name: str, url_env: str, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS):
        super().__init__(name)
        self.url_env = url_env
        self.timeout_seconds = timeout_seconds
        register_secret_env(url_env)  # masked from now on, in this process, even before the first send

    def secrets(self) -> list[str]:
        url = (secret_env(self.url_env) or "").strip()
        return _url_secrets(url) if url else []

    def payload(self, alert: Alert, alert_id: str | None) -> dict[str, Any]:
        return {**alert.to_dict(), "alert_id": alert_id}

    def send(self, alert: Alert, *, alert_id: str | None = None, timeout: float | None = None) -> None:
        self.post(self.payload(redact_alert(alert), alert_id), timeout or self.timeout_seconds or DEFAULT_TIMEOUT_SECONDS)

    def post(self, payload: dict[str, Any], timeout: float) -> str:
        """POST JSON; returns the response body. Errors name ``$url_env``, never the URL."""
        url = read_env(self.name, self.url_env, "the webhook URL")
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
        except TimeoutError:
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
        for variable in (username_env, password_env):
            if variable:
                register_secret_env(variable)

    def secrets(self) -> list[str]:
        return [v for v in [secret_env(self.password_env) if self.password_env else None] if v]

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
            credentials = (read_env(self.name, self.username_env, "the SMTP user name"),
                           read_env(self.name, self.password_env, "the SMTP password"))
        mail = self.message(redact_alert(alert), alert_id)
        timeout = timeout or self.timeout_seconds or DEFAULT_TIMEOUT_SECONDS
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
        except TimeoutError:
            raise self._error(f"{where} timed out after {timeout:g}s") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise self._error(f"{where} failed: {_describe(exc)}") from None


