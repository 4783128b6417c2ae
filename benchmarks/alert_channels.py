"""The hand-written alert channels against apprise doing the same job, side by side, on local servers.

For the webhook (our JSON POST against apprise's ``json://``) and email (our smtplib against
apprise's ``mailto://``), each scenario reports the outcome a dispatcher would record, how long the
try took, and whether the secret in the URL or password reached any log line (every level, every
logger) or the error. Plus what the receiver got: does the payload carry ``alert_id`` (receivers drop
repeats with it) and what happens on a redirect. This is the measurement behind keeping the
hand-written channels and adding apprise beside them (commit f0000c4).

    .venv/bin/python benchmarks/alert_channels.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiosmtpd.controller import Controller

from planwise_monitoring.alerting.apprise_channel import AppriseChannel
from planwise_monitoring.alerting.channels import Channel, DeliveryError, EmailChannel, WebhookChannel
from planwise_monitoring.alerting.policy import Alert, AlertType, Severity
from planwise_monitoring_tests.alerting.helpers import MailBox, free_port
from planwise_monitoring_tests.factories import RecordingServer

TOKEN = "T0KEN-bench-9f8e7d6c5b4a"
PASSWORD = "correct-horse-battery-staple"
ALERT = Alert(AlertType.SLA_BREACH, Severity.ERROR, "scd_workforce_state", 2026, "baseline",
              title="scd_workforce_state 2026 breached its SLA", message="150.0s > 120.0s")


def hung_port() -> tuple[socket.socket, int]:
    """A listening socket that never answers: connects, then silence."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s, s.getsockname()[1]


def attempt(channel: Channel, timeout: float) -> tuple[str, float, bool]:
    """(outcome, seconds, secret seen in any log line or the error) of one send."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    started = time.perf_counter()
    try:
        channel.send(ALERT, alert_id="a-1", timeout=timeout)
        outcome = "sent"
    except DeliveryError as exc:
        outcome = "error: " + str(exc).split(": ", 1)[-1][:110]
    finally:
        elapsed = time.perf_counter() - started
        root.removeHandler(handler)
        root.setLevel(old_level)
    leaked = TOKEN in buffer.getvalue() + outcome or PASSWORD in buffer.getvalue() + outcome
    return outcome, elapsed, leaked


def run(name: str, make: Callable[[], Channel], rounds: int, timeout: float = 0.3) -> list[str]:
    results = [attempt(make(), timeout) for _ in range(rounds)]
    outcome = results[-1][0]
    ms = statistics.median(r[1] for r in results) * 1000
    leaked = any(r[2] for r in results)
    return [name, f"{ms:7.1f} ms", "LEAKED" if leaked else "no", outcome]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        os.environ.pop(name, None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    rows: list[list[str]] = []

    servers = {"ok": RecordingServer(), "500": RecordingServer(respond=lambda p: (500, "boom")),
               "302": RecordingServer(respond=lambda p: (302, "")), "slow": RecordingServer(delay=1.0)}
    hung, hung_at = hung_port()
    refused = free_port()
    try:
        for scenario, port in [("ok", servers["ok"].port), ("HTTP 500", servers["500"].port),
                               ("HTTP 302", servers["302"].port), ("read timeout 0.3s", servers["slow"].port),
                               ("refused", refused)]:
            os.environ["BENCH_HOOK"] = f"http://127.0.0.1:{port}/hooks/{TOKEN}"
            os.environ["BENCH_APPRISE"] = f"json://127.0.0.1:{port}/hooks/{TOKEN}"
            rows.append(run(f"webhook  {scenario}", lambda: WebhookChannel("hook", "BENCH_HOOK", 0.3), rounds))
            rows.append(run(f"json://  {scenario}", lambda: AppriseChannel("pager", "BENCH_APPRISE", 0.3), rounds))
        payloads: dict[str, dict | None] = {"webhook": None, "json://": None}
        for key, channel in [("webhook", WebhookChannel("hook", "BENCH_HOOK", 1)),
                             ("json://", AppriseChannel("pager", "BENCH_APPRISE", 1))]:
            os.environ["BENCH_HOOK"] = f"http://127.0.0.1:{servers['ok'].port}/hooks/{TOKEN}"
            os.environ["BENCH_APPRISE"] = f"json://127.0.0.1:{servers['ok'].port}/hooks/{TOKEN}"
            before = len(servers["ok"].requests)
            channel.send(ALERT, alert_id="a-1")
            payloads[key] = servers["ok"].requests[before]["json"]
        redirects = [r["path"] for r in servers["302"].requests]
    finally:
        for s in servers.values():
            s.stop()

    box = MailBox()
    smtp = Controller(box, hostname="127.0.0.1", port=free_port(), authenticator=box.authenticate,
                      auth_require_tls=False)
    smtp.start()
    try:
        os.environ["BENCH_SMTP_USER"] = "ops-user"
        for scenario, port, password in [("ok", smtp.port, "correct-horse-battery-staple"),
                                         ("wrong password", smtp.port, PASSWORD + "-wrong"),
                                         ("hung server 0.3s", hung_at, PASSWORD), ("refused", refused, PASSWORD)]:
            os.environ["BENCH_SMTP_PASSWORD"] = password
            os.environ["BENCH_MAILTO"] = (f"mailto://ops-user:{password}@127.0.0.1:{port}?mode=insecure"
                                          "&from=planwise@localhost&to=ops@localhost")
            rows.append(run(f"email    {scenario}", lambda p=port: EmailChannel(
                "mail", "127.0.0.1", p, "planwise@localhost", ["ops@localhost"], username_env="BENCH_SMTP_USER",
                password_env="BENCH_SMTP_PASSWORD", timeout_seconds=0.3), rounds))
            rows.append(run(f"mailto:// {scenario}", lambda: AppriseChannel("pager", "BENCH_MAILTO", 0.3), rounds))
        logins = list(box.logins)
    finally:
        smtp.stop()
        hung.close()

    print(f"{'channel / scenario':<28} {'median':>10}  {'secret in logs':<14} outcome")
    for name, ms, leaked, outcome in rows:
        print(f"{name:<28} {ms:>10}  {leaked:<14} {outcome}")
    print()
    print("payload keys, webhook :", sorted(payloads["webhook"] or {}))
    print("payload keys, json:// :", sorted(payloads["json://"] or {}))
    print("requests the 302 server saw (a redirect that is followed re-sends as GET elsewhere):", len(redirects))
    print("SMTP logins (user, accepted) over every email round:", logins)


if __name__ == "__main__":
    main()
