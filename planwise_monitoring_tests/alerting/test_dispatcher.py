"""The dispatcher against real servers on 127.0.0.1 and a real DuckDB file: decide, record, send, retry."""

from __future__ import annotations

import json
import logging
import time

import pytest

from planwise_monitoring.alerting.dispatcher import AlertDispatcher, DispatchReport, build_channel
from planwise_monitoring.alerting.policy import Alert, AlertType, ChannelType, Severity, parse_alert_config
from planwise_monitoring.store.duckdb import MonitoringStore

from ..factories import lock_held_by_another_process
from .helpers import HOOK_ENV, LOGGER, SMTP_PASSWORD, SMTP_USER, TOKEN, Clock, RecordingServer, breach, free_port, rows


def hook_config(**top):
    return parse_alert_config({
        "channels": {"hook": {"type": "webhook", "url_env": HOOK_ENV, "timeout_seconds": 1}},
        "routes": [{"severities": ["ERROR", "CRITICAL"], "channels": ["hook", "log"]}],
        "retry_backoff": 0.01, **top,
    }, "test alerts")


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
