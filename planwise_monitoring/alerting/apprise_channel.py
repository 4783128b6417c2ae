"""An alert channel for the 100+ services apprise speaks (Teams, PagerDuty, Opsgenie, Discord, Matrix, …).

The service is an apprise URL held by an environment variable, never written in the alerts file::

    # alerts.yaml
    channels:
      pager: {type: apprise, url_env: PLANWISE_PAGER_URL, timeout_seconds: 5}

    # the environment, e.g. PLANWISE_PAGER_URL="pagerduty://INTEGRATION_KEY@API_KEY"
    # or "msteams://...", "discord://WEBHOOK_ID/TOKEN", "mailto://user:pass@smtp.example?to=ops@example"

In code::

    import os
    from planwise_monitoring.alerting.apprise_channel import AppriseChannel
    from planwise_monitoring.alerting.channels import DeliveryError
    from planwise_monitoring.alerting.policy import Alert, AlertType, Severity

    os.environ["OPS_PAGER"] = "json://127.0.0.1:9/hooks/T0KEN123"   # nothing listens on port 9
    alert = Alert(AlertType.SLA_BREACH, Severity.ERROR, "scd_workforce_state", 2026, "baseline",
                  title="scd_workforce_state 2026 breached its SLA", message="150.0s > 120.0s")
    try:
        AppriseChannel("pager", "OPS_PAGER", timeout_seconds=1).send(alert)
    except DeliveryError as exc:   # the reason apprise logged, without the URL
        assert str(exc).startswith("apprise channel 'pager': $OPS_PAGER: ") and "T0KEN123" not in str(exc)

How it keeps the channel contract of :mod:`.channels`:

- **Outcome.** ``Apprise.notify`` returns a result that is false when the service failed; the
  reason is only in apprise's log, whose lines this channel collects for the call (in apprise's
  worker thread too, through a context variable) and puts in the :class:`DeliveryError`.
- **Timeouts.** Each try is bounded by the dispatcher's timeout: passed as the URL's connect and
  read timeouts (``cto``/``rto``, unless the URL sets them) and as the limit of the whole call.
- **Secrets.** The URL is read through :func:`~planwise_monitoring.redaction.secret_env`, so it and
  its parts are masked everywhere; apprise URLs also keep tokens where a host name would be
  (``discord://WEBHOOK_ID/TOKEN``), which are registered too. Apprise logs URLs at INFO/DEBUG to the
  ``apprise`` logger, and urllib3 logs the request line (with the URL's path) at DEBUG: a filter on
  each of those loggers masks every line before any handler sees it. The alert text is redacted before it is sent.
- **One service per channel.** A channel is retried as a whole, so a variable holding several URLs
  is refused rather than resending to the services that already got the alert.
"""

from __future__ import annotations

import inspect
import logging
import re
import threading
import urllib.parse
from contextvars import ContextVar
from typing import Any

from ..redaction import redact, register_secret, register_secret_env, secret_env
from .channels import DEFAULT_TIMEOUT_SECONDS, ERROR_LIMIT, Channel, read_env, redact_alert
from .policy import Alert, Severity

_NOTIFY_TYPES = {Severity.INFO: "info", Severity.WARNING: "warning", Severity.ERROR: "failure",
                 Severity.CRITICAL: "failure"}
_HOST_NAME = re.compile(r"(localhost|\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|[^.]+\.[^.]+.*)")  # a DNS name or an IP
_REASON_PREFIXES = ("Socket Exception:",)  # DEBUG lines that say why a connection failed


_OUR_LEVEL = logging.DEBUG - 1  # set on the apprise logger by us; any other level was set by the user
_capture: ContextVar[list[tuple[int, str]] | None] = ContextVar("planwise_apprise_capture", default=None)


class _MaskLine(logging.Filter):
    """Masks secrets in every record of the logger it is on, before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record: keep its template only
            text = str(record.msg)
        record.msg, record.args = redact(text) or "", ()
        return True


# The HTTP libraries apprise sends through log request lines (urllib3 at DEBUG: 'POST /hooks/TOKEN').
_HTTP_LIBRARIES = ("urllib3", "requests", "requests_oauthlib", "httpx", "httpcore")


def _mask_http_library_logs() -> None:
    """Put :class:`_MaskLine` on every logger of those libraries that exists now. A logger's
    filters apply to the records it creates, not to its children's, hence each one."""
    try:
        import requests  # noqa: F401  (apprise's HTTP client: imported now so its loggers exist)
    except ImportError:  # pragma: no cover - apprise depends on requests
        pass
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if (isinstance(logger, logging.Logger) and name.split(".")[0] in _HTTP_LIBRARIES
                and not any(isinstance(f, _MaskLine) for f in logger.filters)):
            logger.addFilter(_MaskLine())


class _MaskAppriseLog(_MaskLine):
    """Masks secrets in every record of the ``apprise`` logger, and keeps the lines of a send in
    progress for its error message. A logger's filters run before its handlers and before
    propagation, so no handler anywhere sees an unmasked line.

    The reason a connection failed is logged at DEBUG, so the logger is opened to DEBUG; the lines
    below the level the user's configuration gives it are then kept for the error only, not passed on.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        super().filter(record)
        captured = _capture.get()  # apprise sends in a worker thread, with a copy of our context
        if captured is not None:
            captured.append((record.levelno, record.msg))
        logger = logging.getLogger("apprise")
        level = logger.level if logger.level not in (logging.NOTSET, _OUR_LEVEL) else (
            logger.parent.getEffectiveLevel() if logger.parent else logging.WARNING)
        return record.levelno >= level


_guard_lock = threading.Lock()


def mask_apprise_log() -> None:
    """Install the masking filter on the ``apprise`` logger (once per process).

        mask_apprise_log()
        assert any(isinstance(f, _MaskAppriseLog) for f in logging.getLogger("apprise").filters)
    """
    logger = logging.getLogger("apprise")
    with _guard_lock:
        if not any(isinstance(f, _MaskAppriseLog) for f in logger.filters):
            logger.addFilter(_MaskAppriseLog())
            if logger.level == logging.NOTSET:
                logger.setLevel(_OUR_LEVEL)


def _register_url(url: str) -> None:
    """Mask the URL's parts that are tokens in apprise's notation: a "host" that is no host name
    (``slack://TokenA/TokenB/TokenC``). The path, query, user and password are registered with the URL."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return
    host = parts.netloc.rpartition("@")[2]  # as written: .hostname lowercases, and tokens are case-sensitive
    host = host if host.startswith("[") else host.split(":")[0]
    if host and not _HOST_NAME.fullmatch(host):
        register_secret(host)
    for user_or_password in (parts.username, parts.password):
        register_secret(user_or_password and urllib.parse.unquote(user_or_password))


def _with_timeouts(url: str, timeout: float) -> str:
    """The URL with connect/read timeouts (``cto``/``rto``) unless it sets them itself."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    extra = "&".join(f"{k}={timeout:g}" for k in ("cto", "rto") if k not in query)
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + extra


class AppriseChannel(Channel):
    """Sends the alert through apprise to the service whose URL is in ``$url_env``.

        import os
        os.environ["OPS_PAGER"] = "discord://998877665544332211/T0KEN-abc123"
        channel = AppriseChannel("pager", "OPS_PAGER", timeout_seconds=5)  # nothing is read or sent yet
        assert channel.kind == "apprise" and channel.timeout_seconds == 5

    The module docstring says how the outcome, timeouts and secrets are handled.
    """

    kind = "apprise"

    def __init__(self, name: str, url_env: str, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS):
        super().__init__(name)
        self.url_env = url_env
        self.timeout_seconds = timeout_seconds
        register_secret_env(url_env)
        mask_apprise_log()

    def secrets(self) -> list[str]:
        url = (secret_env(self.url_env) or "").strip()
        return [url] if url else []

    @staticmethod
    def body(alert: Alert, alert_id: str | None) -> str:
        """The text of the notification: the message, then the facts a responder needs."""
        lines = [alert.message, "", f"severity: {alert.severity.value} · type: {alert.alert_type.value}"]
        where = [f"{k}: {v}" for k, v in (("component", alert.component_name), ("year", alert.simulation_year),
                                           ("scenario", alert.scenario), ("run", alert.simulation_run_id),
                                           ("alert_id", alert_id)) if v]
        lines += where + [f"{k}: {v}" for k, v in alert.details]
        return "\n".join(lines)

    def send(self, alert: Alert, *, alert_id: str | None = None, timeout: float | None = None) -> None:
        import apprise  # ~0.2 s to load its plugins: only in processes that send through it

        with _guard_lock:
            _mask_http_library_logs()  # the libraries exist once apprise is imported; new ones may appear
        url = read_env(self.name, self.url_env, "an apprise URL")
        _register_url(url)
        timeout = timeout or self.timeout_seconds or DEFAULT_TIMEOUT_SECONDS
        where = f"${self.url_env}"
        notifier = apprise.Apprise()
        if not notifier.add(_with_timeouts(url, timeout)) or len(notifier) == 0:
            raise self._error(f"{where} does not hold a URL apprise understands (see "
                              "https://github.com/caronc/apprise/wiki for the services and their URLs)")
        if len(notifier) > 1:
            raise self._error(f"{where} holds {len(notifier)} URLs; give each service a channel of its own "
                              "(a channel is retried as a whole)")
        alert = redact_alert(alert)
        captured: list[tuple[int, str]] = []
        token = _capture.set(captured)
        try:
            # apprise 2.x also bounds the whole call; 1.9 (still allowed by pyproject) has cto/rto only
            limit: dict[str, Any] = {"timeout": timeout} if "timeout" in inspect.signature(notifier.notify).parameters else {}
            ok = bool(notifier.notify(body=self.body(alert, alert_id), title=alert.title,
                                      notify_type=_NOTIFY_TYPES[alert.severity], body_format="text", **limit))
        except Exception as exc:  # apprise or a plugin raising is this channel's failure, not the caller's
            raise self._error(f"{where}: {type(exc).__name__}: {exc}") from None
        finally:
            _capture.reset(token)
        if not ok:
            raise self._error(f"{where}: {self._reason(captured)}")

    @staticmethod
    def _reason(captured: list[tuple[int, str]]) -> str:
        """What apprise logged about the failure: its warnings and the socket error behind them."""
        reasons: list[str] = []
        for level, message in captured:
            text = " ".join(message.split())
            if (level >= logging.WARNING or text.startswith(_REASON_PREFIXES)) and text not in reasons:
                reasons.append(text)
        return "; ".join(reasons)[:ERROR_LIMIT] if reasons else "apprise reported a failure without a reason"
