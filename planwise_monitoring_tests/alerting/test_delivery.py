"""Channels and the dispatcher against real servers on 127.0.0.1 and a real DuckDB file."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import socket
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from planwise_monitoring.alerting.delivery import (
    AlertDispatcher,
    DeliveryError,
    DispatchReport,
    EmailChannel,
    FileChannel,
    LogChannel,
    SlackChannel,
    WebhookChannel,
    build_channel,
)
from planwise_monitoring.alerting.policy import Alert, AlertType, ChannelType, Severity, parse_alert_config
from planwise_monitoring.store.duckdb import MonitoringStore

from .. import factories
from ..factories import lock_held_by_another_process

HOOK_ENV = "PLANWISE_ALERT_WEBHOOK_URL"
TOKEN = "T0KEN-9f8e7d6c5b4a3f2e1d0c"
SMTP_USER, SMTP_PASSWORD = "ops-user", "correct-horse-battery-staple"
LOGGER = "planwise_monitoring_tests.alerts"


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


@pytest.fixture(autouse=True)
def local_only(monkeypatch):
    """Nothing may leave 127.0.0.1: no proxy from the environment."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def server():
    servers = [RecordingServer()]
    yield servers[0]
    servers[0].stop()


@pytest.fixture
def mailbox():
    box = MailBox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port(), authenticator=box.authenticate,
                            auth_require_tls=False)
    controller.start()
    box.port = controller.port
    yield box
    controller.stop()


@pytest.fixture
def store(tmp_path: Path) -> MonitoringStore:
    return MonitoringStore(tmp_path / "monitoring.duckdb")


@pytest.fixture
def log(caplog) -> logging.Logger:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    return logging.getLogger(LOGGER)


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


def hook_config(**top):
    return parse_alert_config({
        "channels": {"hook": {"type": "webhook", "url_env": HOOK_ENV, "timeout_seconds": 1}},
        "routes": [{"severities": ["ERROR", "CRITICAL"], "channels": ["hook", "log"]}],
        "retry_backoff": 0.01, **top,
    }, "test alerts")


# -- channels -----------------------------------------------------------------------------------

def test_webhook_posts_the_alert_as_json(server, monkeypatch):
    monkeypatch.setenv(HOOK_ENV, server.url())
    a = breach()
    WebhookChannel("hook", HOOK_ENV, timeout_seconds=1).send(a, alert_id="abc")
    [request] = server.requests
    assert request["path"] == f"/hooks/{TOKEN}"
    assert request["content_type"] == "application/json"
    assert request["json"] == {**a.to_dict(), "alert_id": "abc"}
    assert request["json"]["details"] == {"duration_seconds": 150.0}


@pytest.mark.parametrize(
    "respond, delay, expected",
    [
        (lambda path: (500, "internal boom"), 0, "answered HTTP 500 Internal Server Error: internal boom"),
        (lambda path: (302, ""), 0, "answered HTTP 302"),  # a redirected POST would lose its body
        (lambda path: (404, f"no route for POST {path}"), 0, "answered HTTP 404 Not Found: no route for POST ***"),
        (lambda path: (200, "ok"), 1.0, "timed out after 0.2s"),
    ],
)
def test_webhook_errors_say_what_happened_without_the_url(monkeypatch, respond, delay, expected):
    server = RecordingServer(respond=respond, delay=delay)
    try:
        monkeypatch.setenv(HOOK_ENV, server.url())
        started = time.monotonic()
        with pytest.raises(DeliveryError) as info:
            WebhookChannel("hook", HOOK_ENV, timeout_seconds=0.2).send(breach())
        assert time.monotonic() - started < 0.9
    finally:
        server.stop()
    message = str(info.value)
    assert message.startswith(f"webhook channel 'hook': POST to ${HOOK_ENV}")
    assert expected in message
    assert TOKEN not in message and "127.0.0.1" not in message


def test_webhook_unreachable_missing_or_malformed_url(monkeypatch):
    channel = WebhookChannel("hook", "OPS_HOOK_ENDPOINT", timeout_seconds=0.5)
    monkeypatch.delenv("OPS_HOOK_ENDPOINT", raising=False)
    with pytest.raises(DeliveryError, match="channel 'hook': environment variable OPS_HOOK_ENDPOINT is not set"):
        channel.send(breach())
    monkeypatch.setenv("OPS_HOOK_ENDPOINT", f"ftp://127.0.0.1/{TOKEN}")
    with pytest.raises(DeliveryError, match=r"\$OPS_HOOK_ENDPOINT does not hold an http\(s\) URL") as info:
        channel.send(breach())
    assert TOKEN not in str(info.value)
    monkeypatch.setenv("OPS_HOOK_ENDPOINT", f"http://127.0.0.1:{free_port()}/hooks/{TOKEN}")
    with pytest.raises(DeliveryError, match="connection refused") as info:
        channel.send(breach())
    assert TOKEN not in str(info.value)


def test_slack_posts_text_and_blocks(server, monkeypatch):
    monkeypatch.setenv("PLANWISE_SLACK_WEBHOOK_URL", server.url("/services/T000/B000/" + TOKEN))
    SlackChannel("slack", "PLANWISE_SLACK_WEBHOOK_URL", timeout_seconds=1).send(
        breach(title="scd <slow> & late", message="150s > 120s"))
    [request] = server.requests
    payload = request["json"]
    assert payload["text"] == "[ERROR] scd &lt;slow&gt; &amp; late\n150s &gt; 120s"
    assert payload["blocks"][0]["text"]["text"].startswith("*scd &lt;slow&gt; &amp; late*")
    assert "SLA_BREACH" in payload["blocks"][1]["elements"][0]["text"]


def test_slack_error_answers_are_quoted(monkeypatch):
    server = RecordingServer(respond=lambda path: (400, "invalid_payload"))
    try:
        monkeypatch.setenv("PLANWISE_SLACK_WEBHOOK_URL", server.url())
        with pytest.raises(DeliveryError, match="slack channel 'slack': .*HTTP 400 Bad Request: invalid_payload"):
            SlackChannel("slack", "PLANWISE_SLACK_WEBHOOK_URL", timeout_seconds=1).send(breach())
    finally:
        server.stop()


def test_email_arrives_with_the_title_as_subject(mailbox):
    channel = EmailChannel("mail", "127.0.0.1", mailbox.port, "planwise@localhost", ["ops@localhost", "dev@localhost"],
                           timeout_seconds=2)
    channel.send(breach(), alert_id="abc-123")
    [mail] = mailbox.messages
    assert mail["Subject"] == "SLA_BREACH: scd_workforce_state 2026"
    assert mail["From"] == "planwise@localhost" and mail["To"] == "ops@localhost, dev@localhost"
    body = mail.get_content().replace("\r\n", "\n")
    assert body.startswith("150.00s against 90s warning / 120s breach\n")
    for line in ["severity: ERROR", "type: SLA_BREACH", "component: scd_workforce_state", "year: 2026",
                 "alert_id: abc-123", "duration_seconds: 150.0"]:
        assert line in body
    assert mailbox.logins == []  # no credentials configured: no login


def test_email_logs_in_with_credentials_from_the_environment(mailbox, monkeypatch):
    monkeypatch.setenv("PLANWISE_SMTP_USER", SMTP_USER)
    monkeypatch.setenv("PLANWISE_SMTP_PASSWORD", SMTP_PASSWORD)
    channel = build_channel(parse_alert_config({"channels": {"mail": {
        "type": "email", "host": "127.0.0.1", "port": mailbox.port, "from": "planwise@localhost",
        "to": ["ops@localhost"], "username_env": "PLANWISE_SMTP_USER", "password_env": "PLANWISE_SMTP_PASSWORD",
        "timeout_seconds": 2}}}, "test").channels["mail"], logging.getLogger(LOGGER))
    assert isinstance(channel, EmailChannel)
    channel.send(breach())
    assert mailbox.logins == [(SMTP_USER, True)]
    assert len(mailbox.messages) == 1


def test_email_errors_name_variables_not_values(mailbox, monkeypatch):
    channel = EmailChannel("mail", "127.0.0.1", mailbox.port, "planwise@localhost", ["ops@localhost"],
                           username_env="OPS_SMTP_LOGIN", password_env="OPS_SMTP_PASS", timeout_seconds=2)
    monkeypatch.setenv("OPS_SMTP_LOGIN", SMTP_USER)
    monkeypatch.delenv("OPS_SMTP_PASS", raising=False)
    with pytest.raises(DeliveryError, match="channel 'mail': environment variable OPS_SMTP_PASS is not set"):
        channel.send(breach())
    assert mailbox.logins == []  # checked before connecting
    monkeypatch.setenv("OPS_SMTP_PASS", "wrong-password-42")
    with pytest.raises(DeliveryError, match=r"email channel 'mail': SMTP 127.0.0.1:\d+ login failed: 535") as info:
        channel.send(breach())
    assert "wrong-password-42" not in str(info.value)
    assert mailbox.messages == []
    closed = EmailChannel("mail", "127.0.0.1", free_port(), "planwise@localhost", ["ops@localhost"], timeout_seconds=1)
    with pytest.raises(DeliveryError, match="connection refused"):
        closed.send(breach())


def test_file_channel_appends_json_lines(tmp_path: Path):
    path = tmp_path / "artifacts" / "deep" / "alerts.jsonl"
    channel = build_channel(parse_alert_config({"channels": {"audit": {"type": "file", "path": str(path)}}},
                                               "test").channels["audit"], logging.getLogger(LOGGER))
    channel.send(breach(), alert_id="a-1")
    channel.send(breach(year=2027), alert_id="a-2")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["alert_id"], r["simulation_year"], r["alert_type"]) for r in lines] == [
        ("a-1", 2026, "SLA_BREACH"), ("a-2", 2027, "SLA_BREACH")]
    assert lines[0]["fingerprint"] == breach().fingerprint and lines[0]["details"] == {"duration_seconds": 150.0}
    with pytest.raises(DeliveryError, match="file channel 'audit': cannot append to"):
        FileChannel("audit", tmp_path).send(breach())  # a directory


def test_log_channel_level_follows_severity(log, caplog):
    channel = LogChannel("log", log)
    for severity in Severity:
        channel.send(breach(severity=severity, title=f"t-{severity.value}"))
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (s.value, f"planwise alert [{s.value}] t-{s.value}: 150.00s against 90s warning / 120s breach")
        for s in Severity]

    class DagsterLikeLog:  # context.log has info/warning/error; CRITICAL falls back to error
        def __init__(self):
            self.lines = []
            self.info = lambda m: self.lines.append(("info", m))
            self.warning = lambda m: self.lines.append(("warning", m))
            self.error = lambda m: self.lines.append(("error", m))

    dagster_log = DagsterLikeLog()
    LogChannel("log", dagster_log).send(breach(severity=Severity.CRITICAL))
    assert [level for level, _ in dagster_log.lines] == ["error"]


# -- the dispatcher -----------------------------------------------------------------------------

def test_a_breach_is_one_post_then_suppressed_within_the_throttle_window(server, store, log, monkeypatch):
    monkeypatch.setenv(HOOK_ENV, server.url())
    clock = Clock()
    report = AlertDispatcher(store, hook_config(), log, clock).dispatch([breach()])
    assert (report.sent, report.pending, report.failed, report.suppressed) == (2, 0, 0, 0)
    assert str(report) == "2 sent, 0 pending, 0 failed, 0 suppressed"
    assert len(server.requests) == 1 and server.requests[0]["json"]["alert_type"] == "SLA_BREACH"
    first = rows(store)
    assert [(r["channel"], r["status"], r["attempts"]) for r in first] == [("hook", "sent", 1), ("log", "sent", 1)]
    assert first[0]["alert_id"] == first[1]["alert_id"]  # one alert, one id for all its channels
    assert str(first[0]["alert_id"]) == server.requests[0]["json"]["alert_id"]
    assert first[0]["sent_at"] == clock.now and first[0]["fingerprint"] == breach().fingerprint
    assert str(first[0]["performance_id"]) == breach().performance_id

    clock.advance(minutes=59)
    report = AlertDispatcher(store, hook_config(), log, clock).dispatch([breach(message="slower still")])
    assert (report.sent, report.suppressed) == (0, 2)
    assert len(server.requests) == 1
    assert sorted((r["channel"], r["status"]) for r in rows(store)) == [
        ("hook", "sent"), ("hook", "suppressed"), ("log", "sent"), ("log", "suppressed")]

    clock.advance(minutes=1)  # the window (from the last alert actually sent) has passed
    report = AlertDispatcher(store, hook_config(), log, clock).dispatch([breach()])
    assert report.sent == 2 and len(server.requests) == 2


def test_duplicates_in_one_batch_are_suppressed_and_others_are_not(server, store, log, monkeypatch):
    monkeypatch.setenv(HOOK_ENV, server.url())
    report = AlertDispatcher(store, hook_config(throttle=0), log, Clock()).dispatch(
        [breach(), breach(), breach(year=2027), Alert(AlertType.SLA_WARNING, Severity.WARNING, "x", 2026, "baseline",
                                                       "warning", "m")])
    assert (report.sent, report.suppressed) == (5, 2)  # 2 breaches x (hook, log) + the warning on log
    assert sorted(r["json"]["simulation_year"] for r in server.requests) == [2026, 2027]
    assert [r["channel"] for r in rows(store) if r["alert_type"] == "SLA_WARNING"] == ["log"]  # the default


def test_an_unreachable_webhook_stays_pending_until_it_is_back(server, store, log, monkeypatch, caplog):
    port = server.port
    monkeypatch.setenv(HOOK_ENV, server.url())
    server.stop()
    clock = Clock()
    dispatcher = AlertDispatcher(store, hook_config(), log, clock)
    report = dispatcher.dispatch([breach()])  # does not raise
    assert (report.sent, report.pending, report.failed) == (1, 1, 0)  # log sent, hook pending
    [hook] = [r for r in rows(store) if r["channel"] == "hook"]
    assert (hook["status"], hook["attempts"], hook["sent_at"]) == ("pending", 3, None)
    assert hook["last_error"] == f"webhook channel 'hook': POST to ${HOOK_ENV} failed: connection refused"
    assert report.errors == (f"hook: {hook['last_error']}",)
    assert "attempt 3 of 5 failed, will retry" in caplog.text
    assert dispatcher.retry_pending() == DispatchReport()  # tried moments ago by this dispatcher: next tick

    back = RecordingServer(port)
    try:
        clock.advance(seconds=30)
        report = AlertDispatcher(store, hook_config(), log, clock).retry_pending()
        assert (report.sent, report.pending) == (1, 0)
        [request] = back.requests
        [hook] = [r for r in rows(store) if r["channel"] == "hook"]
        assert (hook["status"], hook["attempts"], hook["last_error"], hook["sent_at"]) == ("sent", 4, None, clock.now)
        assert request["json"]["alert_id"] == str(hook["alert_id"])
        assert request["json"]["details"] == {}  # rebuilt from the row, which keeps no details
        assert AlertDispatcher(store, hook_config(), log, clock).retry_pending() == DispatchReport()
    finally:
        back.stop()


def test_a_delivery_fails_after_max_attempts(store, log, monkeypatch, caplog):
    monkeypatch.setenv(HOOK_ENV, f"http://127.0.0.1:{free_port()}/hooks/{TOKEN}")
    config, clock = hook_config(max_attempts=4), Clock()
    report = AlertDispatcher(store, config, log, clock, attempts_per_tick=2).dispatch([breach()])
    assert report.pending == 1
    assert [(r["status"], r["attempts"]) for r in rows(store) if r["channel"] == "hook"] == [("pending", 2)]
    report = AlertDispatcher(store, config, log, clock, attempts_per_tick=3).retry_pending()
    assert (report.failed, report.pending) == (1, 0)
    [hook] = [r for r in rows(store) if r["channel"] == "hook"]
    assert (hook["status"], hook["attempts"]) == ("failed", 4)  # capped at max_attempts, not 2 + 3
    assert "connection refused" in hook["last_error"]
    assert "gave up after 4 attempt(s)" in caplog.text
    assert AlertDispatcher(store, config, log, clock).retry_pending() == DispatchReport()
    with store.session() as s:
        assert s.pending_deliveries() == []


@pytest.mark.parametrize("hook_env, password_env", [
    ("PLANWISE_ALERT_WEBHOOK_URL", "PLANWISE_SMTP_PASSWORD"),  # names redact() masks anyway
    ("OPS_HOOK_ENDPOINT", "OPS_SMTP_PASS"),  # names it does not know: the channels must not leak them
])
def test_secrets_never_reach_the_database_or_the_logs(store, log, mailbox, monkeypatch, caplog, hook_env,
                                                      password_env):
    echo = RecordingServer(respond=lambda path: (404, f"Cannot POST {path} (see http://127.0.0.1{path})"))
    url = echo.url()
    monkeypatch.setenv(hook_env, url)
    monkeypatch.setenv("OPS_SMTP_LOGIN", SMTP_USER)
    monkeypatch.setenv(password_env, "wrong-" + SMTP_PASSWORD)
    config = parse_alert_config({
        "channels": {
            "hook": {"type": "webhook", "url_env": hook_env, "timeout_seconds": 1},
            "slack": {"type": "slack", "url_env": hook_env, "timeout_seconds": 1},
            "mail": {"type": "email", "host": "127.0.0.1", "port": mailbox.port, "from": "planwise@localhost",
                     "to": ["ops@localhost"], "username_env": "OPS_SMTP_LOGIN", "password_env": password_env,
                     "timeout_seconds": 2},
        },
        "routes": [{"severities": ["ERROR"], "channels": ["hook", "slack", "mail", "log"]}],
        "retry_backoff": 0.01, "max_attempts": 4,
    }, "test alerts")
    clock = Clock()
    try:
        report = AlertDispatcher(store, config, log, clock).dispatch([breach()])
        assert (report.sent, report.pending) == (1, 3)
        clock.advance(minutes=5)
        report = AlertDispatcher(store, config, log, clock).retry_pending()
        assert report.failed == 3
        assert len(echo.requests) == 8  # 2 channels x 4 attempts
    finally:
        echo.stop()
    stored = rows(store)
    errors = {r["channel"]: r["last_error"] for r in stored if r["status"] == "failed"}
    assert errors["hook"].startswith(f"webhook channel 'hook': POST to ${hook_env} answered HTTP 404 Not Found: "
                                     "Cannot POST ***")
    assert errors["slack"].startswith(f"slack channel 'slack': POST to ${hook_env} answered HTTP 404")
    assert errors["mail"].startswith("email channel 'mail': SMTP 127.0.0.1:") and "login failed: 535" in errors["mail"]
    everything = json.dumps(stored, default=str) + caplog.text + json.dumps(report.errors)
    for secret in (url, TOKEN, SMTP_PASSWORD, url.split("://")[1]):
        assert secret not in everything


def test_alert_text_is_redacted_before_it_is_stored_or_sent(server, store, log, monkeypatch, tmp_path):
    monkeypatch.setenv(HOOK_ENV, server.url())
    monkeypatch.setenv("PLANWISE_DB_PASSWORD", "s3cret-db-pass")
    config = parse_alert_config({
        "channels": {"hook": {"type": "webhook", "url_env": HOOK_ENV},
                     "audit": {"type": "file", "path": str(tmp_path / "alerts.jsonl")}},
        "default_channels": ["hook", "audit", "log"],
    }, "test alerts")
    a = breach(title="connect failed with s3cret-db-pass", message="dsn postgres://u:s3cret-db-pass@db/x",
               details={"error": "auth s3cret-db-pass"})
    report = AlertDispatcher(store, config, log, Clock()).dispatch([a])
    assert report.sent == 3
    assert server.requests[0]["json"]["message"] == "dsn postgres://u:***@db/x"
    assert server.requests[0]["json"]["details"] == {"error": "auth ***"}
    assert "s3cret-db-pass" not in (tmp_path / "alerts.jsonl").read_text()
    assert {r["title"] for r in rows(store)} == {"connect failed with ***"}


def test_a_tick_is_bounded_and_a_down_channel_is_not_retried_for_every_row(store, log, monkeypatch):
    slow = RecordingServer(delay=1.5)
    try:
        monkeypatch.setenv(HOOK_ENV, slow.url())
        config = parse_alert_config({
            "channels": {"hook": {"type": "webhook", "url_env": HOOK_ENV, "timeout_seconds": 0.3}},
            "default_channels": ["hook", "log"], "retry_backoff": 0.01,
        }, "test alerts")
        dispatcher = AlertDispatcher(store, config, log, Clock(), channel_budget_seconds=0.5)
        started = time.monotonic()
        report = dispatcher.dispatch([breach(year=y) for y in (2025, 2026, 2027)])
        assert time.monotonic() - started < 1.2
    finally:
        slow.stop()
    assert (report.sent, report.pending) == (3, 3)  # the log channel is not held up by the webhook
    hooks = sorted((r["attempts"], r["last_error"] or "") for r in rows(store) if r["channel"] == "hook")
    assert [attempts for attempts, _ in hooks] == [0, 0, 2]  # timed out twice; the others were spared
    assert "timed out" in hooks[-1][1]


def test_a_row_left_pending_by_a_crashed_dispatch_is_sent_after_the_grace_period(server, store, log, monkeypatch):
    monkeypatch.setenv(HOOK_ENV, server.url())
    clock = Clock()
    a = breach()
    with store.session() as s:  # what a dispatch leaves behind if it dies between recording and sending
        s.insert_alerts([{"alert_id": "11111111-2222-4333-8444-555555555555", "channel": "hook",
                          "fingerprint": a.fingerprint, "alert_type": "SLA_BREACH", "severity": "ERROR",
                          "component_name": a.component_name, "simulation_year": 2026, "scenario": "baseline",
                          "title": a.title, "message": a.message, "status": "pending", "attempts": 0,
                          "created_at": clock.now},
                         {"alert_id": "11111111-2222-4333-8444-555555555555", "channel": "pager",
                          "fingerprint": a.fingerprint, "alert_type": "SLA_BREACH", "severity": "ERROR",
                          "title": a.title, "message": a.message, "status": "pending", "attempts": 1,
                          "created_at": clock.now}])
    assert AlertDispatcher(store, hook_config(), log, clock).retry_pending() == DispatchReport()  # maybe in flight
    assert server.requests == []
    clock.advance(seconds=61)
    report = AlertDispatcher(store, hook_config(), log, clock).retry_pending()
    assert report.sent == 1 and len(server.requests) == 1
    statuses = {r["channel"]: r["status"] for r in rows(store)}
    assert statuses == {"hook": "sent", "pager": "pending"}  # a channel this config lacks is left alone


def test_a_locked_database_is_reported_not_raised_and_alerts_still_go_out(tmp_path, server, log, monkeypatch):
    monkeypatch.setenv(HOOK_ENV, server.url())
    db = tmp_path / "monitoring.duckdb"
    with MonitoringStore(db).session():
        pass  # create the file and its schema
    store = MonitoringStore(db, lock_timeout_seconds=0.2)
    with lock_held_by_another_process(db):
        dispatcher = AlertDispatcher(store, hook_config(), log, Clock())
        report = dispatcher.dispatch([breach()])
        assert report.sent == 2 and len(server.requests) == 1  # a lost alert is worse than an unthrottled one
        assert "locked" in report.store_error
        assert "monitoring database unavailable" in str(report)
        assert "locked" in AlertDispatcher(store, hook_config(), log, Clock()).retry_pending().store_error
    assert rows(store) == []  # never recorded: the lock was held throughout


def test_build_channel_makes_each_type(tmp_path):
    config = parse_alert_config({"channels": {
        "audit": {"type": "file", "path": str(tmp_path / "a.jsonl")},
        "hook": {"type": "webhook", "url_env": "X_URL", "timeout_seconds": "2s"},
        "slack": {"type": "slack", "url_env": "Y_URL"},
        "mail": {"type": "email", "host": "127.0.0.1", "from": "a@b", "to": "ops@b", "starttls": True},
    }}, "test")
    channels = {n: build_channel(c, logging.getLogger(LOGGER)) for n, c in config.channels.items()}
    assert {n: type(c).__name__ for n, c in channels.items()} == {
        "log": "LogChannel", "audit": "FileChannel", "hook": "WebhookChannel", "slack": "SlackChannel",
        "mail": "EmailChannel"}
    assert channels["hook"].timeout_seconds == 2.0 and channels["slack"].timeout_seconds == 3.0
    assert (channels["mail"].port, channels["mail"].recipients, channels["mail"].starttls) == (25, ("ops@b",), True)
    assert config.channels["log"].type is ChannelType.LOG
