"""The apprise channel against real servers on 127.0.0.1: json:// to HTTP, mailto:// to SMTP."""

from __future__ import annotations

import logging

import pytest

from planwise_monitoring.alerting.apprise_channel import AppriseChannel
from planwise_monitoring.alerting.channels import DeliveryError
from planwise_monitoring.alerting.dispatcher import AlertDispatcher, build_channel
from planwise_monitoring.alerting.policy import Severity, parse_alert_config
from planwise_monitoring.redaction import redact

from .helpers import SMTP_PASSWORD, SMTP_USER, TOKEN, Clock, RecordingServer, breach, free_port, rows

PAGER_ENV = "OPS_PAGER"  # a name redact() would not guess is a secret: the channel must register it


@pytest.fixture
def apprise_log(caplog) -> pytest.LogCaptureFixture:
    """Everything apprise logs, down to DEBUG (where it writes URLs), as a user's handler would see it."""
    caplog.set_level(logging.DEBUG, logger="apprise")
    return caplog


def json_url(server: RecordingServer, path: str = f"/hooks/{TOKEN}") -> str:
    return f"json://127.0.0.1:{server.port}{path}"


def mail_url(port: int, password: str = SMTP_PASSWORD) -> str:
    return (f"mailto://{SMTP_USER}:{password}@127.0.0.1:{port}?mode=insecure"
            "&from=planwise@localhost&to=ops@localhost")


def test_json_url_posts_the_alert(server, monkeypatch):
    monkeypatch.setenv(PAGER_ENV, json_url(server))
    a = breach(severity=Severity.CRITICAL)
    AppriseChannel("pager", PAGER_ENV, timeout_seconds=2).send(a, alert_id="abc-1")
    [request] = server.requests
    assert request["path"] == f"/hooks/{TOKEN}"
    payload = request["json"]
    assert (payload["title"], payload["type"]) == (a.title, "failure")
    assert payload["message"].startswith(f"{a.message}\n\nseverity: CRITICAL · type: SLA_BREACH\n")
    for line in ("component: scd_workforce_state", "year: 2026", "alert_id: abc-1", "duration_seconds: 150.0"):
        assert line in payload["message"].splitlines()


def test_mailto_url_reaches_the_smtp_server_and_logs_in(mailbox, monkeypatch):
    monkeypatch.setenv(PAGER_ENV, mail_url(mailbox.port))
    AppriseChannel("pager", PAGER_ENV, timeout_seconds=2).send(breach())
    [mail] = mailbox.messages
    assert mail["Subject"] == "SLA_BREACH: scd_workforce_state 2026"
    assert mail["To"] == "ops@localhost"
    assert mailbox.logins == [(SMTP_USER, True)]


@pytest.mark.parametrize("respond, delay, expected", [
    (lambda path: (500, "boom"), 0.0, "Failed to send JSON POST notification: Internal server error., error=500."),
    (lambda path: (404, f"no route for {path}"), 0.0, "error=404"),
    (lambda path: (200, "ok"), 1.0, "Read timed out. (read timeout=0.3)"),  # the dispatcher's timeout applies
])
def test_a_failure_is_a_delivery_error_with_apprises_reason_and_no_url(monkeypatch, apprise_log, respond, delay,
                                                                       expected):
    server = RecordingServer(respond=respond, delay=delay)
    try:
        monkeypatch.setenv(PAGER_ENV, json_url(server))
        with pytest.raises(DeliveryError) as info:
            AppriseChannel("pager", PAGER_ENV, timeout_seconds=2).send(breach(), timeout=0.3)
        assert len(server.requests) == 1  # it was tried, once: retries are the dispatcher's
    finally:
        server.stop()
    message = str(info.value)
    assert message.startswith(f"apprise channel 'pager': ${PAGER_ENV}: ")
    assert expected in message
    assert TOKEN not in message and TOKEN not in apprise_log.text
    url_lines = [line for line in apprise_log.text.splitlines() if "URL: " in line]
    assert url_lines and all("***" in line for line in url_lines)  # logged, masked before any handler saw it


def test_an_unreachable_service_and_a_refused_login(mailbox, monkeypatch):
    monkeypatch.setenv(PAGER_ENV, f"json://127.0.0.1:{free_port()}/hooks/{TOKEN}")
    with pytest.raises(DeliveryError, match="Connection refused") as info:
        AppriseChannel("pager", PAGER_ENV).send(breach(), timeout=1)
    assert TOKEN not in str(info.value)
    monkeypatch.setenv(PAGER_ENV, mail_url(mailbox.port, password="wrong-pass-4242"))
    with pytest.raises(DeliveryError, match=r"535.*Authentication credentials invalid") as info:
        AppriseChannel("pager", PAGER_ENV).send(breach(), timeout=1)
    assert "wrong-pass-4242" not in str(info.value) and mailbox.messages == []


def test_missing_unknown_and_multiple_urls_are_refused_without_their_value(monkeypatch):
    channel = AppriseChannel("pager", PAGER_ENV)
    monkeypatch.delenv(PAGER_ENV, raising=False)
    with pytest.raises(DeliveryError, match=f"channel 'pager': environment variable {PAGER_ENV} is not set"):
        channel.send(breach())
    monkeypatch.setenv(PAGER_ENV, f"nosuchservice://{TOKEN}")
    with pytest.raises(DeliveryError, match="does not hold a URL apprise understands") as info:
        channel.send(breach())
    assert TOKEN not in str(info.value)
    monkeypatch.setenv(PAGER_ENV, f"json://127.0.0.1:1/{TOKEN} json://127.0.0.1:2/{TOKEN}")
    with pytest.raises(DeliveryError, match="holds 2 URLs; give each service a channel of its own"):
        channel.send(breach())


def test_tokens_where_apprise_urls_put_a_host_are_masked(monkeypatch, apprise_log):
    """discord://WEBHOOK_ID/TOKEN: the id stands where a host would. A proxy that refuses on
    127.0.0.1 keeps the attempt on this machine."""
    webhook_id, token = "998877665544332211", "dIsCoRd-T0ken-abcdef123456"
    monkeypatch.setenv(PAGER_ENV, f"discord://{webhook_id}/{token}")
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("NO_PROXY")
    monkeypatch.delenv("no_proxy")
    with pytest.raises(DeliveryError) as info:
        AppriseChannel("pager", PAGER_ENV).send(breach(), timeout=1)
    for secret in (webhook_id, token):
        assert secret not in str(info.value) and secret not in apprise_log.text
        assert redact(f"id {secret}") == "id ***"
    assert "discord" in apprise_log.text.lower()  # it did log about the service


def test_the_alert_text_is_redacted_before_it_is_sent(server, monkeypatch):
    monkeypatch.setenv(PAGER_ENV, json_url(server))
    monkeypatch.setenv("PLANWISE_DB_PASSWORD", "s3cret-db-pass")
    AppriseChannel("pager", PAGER_ENV).send(breach(title="login s3cret-db-pass failed",
                                                   details={"dsn": "postgres://u:s3cret-db-pass@db/x"}))
    [request] = server.requests
    assert "s3cret-db-pass" not in str(request["json"])
    assert request["json"]["title"] == "login *** failed"


def test_the_dispatcher_sends_retries_and_records_through_apprise(store, log, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="apprise")
    config = parse_alert_config({
        "channels": {"pager": {"type": "apprise", "url_env": PAGER_ENV, "timeout_seconds": 1}},
        "default_channels": ["pager"], "retry_backoff": 0.01, "max_attempts": 5,
    }, "test alerts")
    assert isinstance(build_channel(config.channels["pager"], log), AppriseChannel)
    port = free_port()
    monkeypatch.setenv(PAGER_ENV, f"json://127.0.0.1:{port}/hooks/{TOKEN}")
    clock = Clock()
    report = AlertDispatcher(store, config, log, clock).dispatch([breach()])
    assert (report.sent, report.pending) == (0, 1)
    [row] = rows(store)
    assert (row["status"], row["attempts"]) == ("pending", 3)
    assert row["last_error"].startswith(f"apprise channel 'pager': ${PAGER_ENV}: A Connection error occurred")
    back = RecordingServer(port)
    try:
        clock.advance(minutes=1)
        report = AlertDispatcher(store, config, log, clock).retry_pending()
        assert report.sent == 1 and len(back.requests) == 1
    finally:
        back.stop()
    [row] = rows(store)
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 4, None)
    assert TOKEN not in caplog.text and TOKEN not in str(report.errors)


def test_the_http_librarys_request_line_is_masked_too(server, monkeypatch, caplog):
    """apprise posts through requests, and urllib3 logs 'POST /hooks/TOKEN' at DEBUG on its own logger."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(PAGER_ENV, json_url(server))
    AppriseChannel("pager", PAGER_ENV).send(breach())
    request_lines = [r.getMessage() for r in caplog.records if r.name.startswith("urllib3") and "POST" in r.getMessage()]
    assert request_lines and all("POST ***" in line for line in request_lines)
    assert TOKEN not in caplog.text
