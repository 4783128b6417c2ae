"""The hand-written channels against real servers on 127.0.0.1: webhook, Slack, email, file, log."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from planwise_monitoring.alerting.channels import (
    DeliveryError,
    EmailChannel,
    FileChannel,
    LogChannel,
    SlackChannel,
    WebhookChannel,
)
from planwise_monitoring.alerting.dispatcher import build_channel
from planwise_monitoring.alerting.policy import Severity, parse_alert_config

from .helpers import HOOK_ENV, LOGGER, SMTP_PASSWORD, SMTP_USER, TOKEN, RecordingServer, breach, free_port

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
        with pytest.raises(DeliveryError, match=r"slack channel 'slack': .*HTTP 400 Bad Request: invalid_payload"):
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


def test_every_value_a_channel_reads_is_masked_everywhere_whatever_its_variable_is_called(mailbox, monkeypatch):
    """The channels read through redaction.secret_env: a URL in OPS_HOOK_ENDPOINT, a user name and a
    password in OPS_SMTP_* are masked in any text of the process from then on, not only in the
    channel's own errors (before, only variables named like secrets were)."""
    from planwise_monitoring.redaction import redact

    url = f"http://127.0.0.1:{free_port()}/hooks/{TOKEN}"
    monkeypatch.setenv("OPS_HOOK_ENDPOINT", url)
    monkeypatch.setenv("OPS_SMTP_LOGIN", "ops-login-name")
    monkeypatch.setenv("OPS_SMTP_SECRETISH", "pw-" + SMTP_PASSWORD)
    with pytest.raises(DeliveryError):
        WebhookChannel("hook", "OPS_HOOK_ENDPOINT", timeout_seconds=1).send(breach())
    with pytest.raises(DeliveryError):
        EmailChannel("mail", "127.0.0.1", mailbox.port, "planwise@localhost", ["ops@localhost"],
                     username_env="OPS_SMTP_LOGIN", password_env="OPS_SMTP_SECRETISH", timeout_seconds=1).send(breach())
    text = f"posted to {url}, then logged in as ops-login-name with pw-{SMTP_PASSWORD}"
    masked = redact(text)
    for secret in (url, TOKEN, "ops-login-name", SMTP_PASSWORD):
        assert secret not in masked
