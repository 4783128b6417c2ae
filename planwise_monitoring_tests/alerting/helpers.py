"""What the alerting tests share: real servers on 127.0.0.1, an injected clock, an alert factory."""

from __future__ import annotations

import email
import email.policy
import socket
from datetime import datetime, timedelta

from aiosmtpd.smtp import AuthResult

from planwise_monitoring.alerting.policy import Alert, AlertType, Severity
from planwise_monitoring.store.duckdb import MonitoringStore

from .. import factories

HOOK_ENV = "PLANWISE_ALERT_WEBHOOK_URL"
TOKEN = "T0KEN-9f8e7d6c5b4a3f2e1d0c"
SMTP_USER, SMTP_PASSWORD = "ops-user", "correct-horse-battery-staple"
LOGGER = "planwise_monitoring_tests.alerts"

# an alerts file's channels, one of each type, for the config and routing tests
SOURCE = "alerts.yaml"
CHANNELS = {
    "log": {"type": "log"},
    "audit": {"type": "file", "path": "artifacts/alerts.jsonl"},
    "hook": {"type": "webhook", "url_env": "PLANWISE_ALERT_WEBHOOK_URL"},
    "slack": {"type": "slack", "url_env": "PLANWISE_SLACK_WEBHOOK_URL"},
    "mail": {"type": "email", "host": "localhost", "from": "planwise@localhost", "to": ["ops@localhost"]},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RecordingServer(factories.RecordingServer):
    def url(self, path: str = f"/hooks/{TOKEN}") -> str:  # the token in the path is a secret
        return super().url(path)


class MailBox:
    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []
        self.logins: list[tuple[str, bool]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted for delivery"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login.decode(), auth_data.password.decode()) == (SMTP_USER, SMTP_PASSWORD)
        self.logins.append((auth_data.login.decode(), ok))
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself


class Clock:
    def __init__(self):
        self.now = datetime(2026, 3, 1, 12, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


def breach(component: str = "scd_workforce_state", year: int = 2026, **kw) -> Alert:
    return Alert(AlertType.SLA_BREACH, kw.pop("severity", Severity.ERROR), component, year, "baseline",
                 title=kw.pop("title", f"SLA_BREACH: {component} {year}"),
                 message=kw.pop("message", "150.00s against 90s warning / 120s breach"),
                 simulation_run_id="run-1", performance_id="7d3c8d0e-5b8f-4e9e-9b7a-8d6c1f0a2b3c",
                 details=kw.pop("details", {"duration_seconds": 150.0}), **kw)


def rows(store: MonitoringStore) -> list[dict]:
    df = store.alerts(limit=1000)
    df = df.astype(object).where(df.notna(), None)  # NaT/NaN as None
    return sorted(df.to_dict("records"), key=lambda r: (r["created_at"], r["channel"], r["status"]))
