from __future__ import annotations

import json
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from planwise_monitoring.alerting import config as alert_config
from planwise_monitoring.alerting import policy as alert_policy
from planwise_monitoring.alerting.config import load_alert_config, parse_alert_config, parse_duration
from planwise_monitoring.alerting.policy import (
    Alert,
    AlertConfig,
    AlertConfigError,
    AlertType,
    ChannelConfig,
    ChannelType,
    Route,
    Severity,
    route,
    should_send,
)

SOURCE = "alerts.yaml"
CHANNELS = {
    "log": {"type": "log"},
    "audit": {"type": "file", "path": "artifacts/alerts.jsonl"},
    "hook": {"type": "webhook", "url_env": "PLANWISE_ALERT_WEBHOOK_URL"},
    "slack": {"type": "slack", "url_env": "PLANWISE_SLACK_WEBHOOK_URL"},
    "mail": {"type": "email", "host": "localhost", "from": "planwise@localhost", "to": ["ops@localhost"]},
}


def alert(alert_type=AlertType.SLA_BREACH, severity=Severity.ERROR, component="scd_workforce_state",
          year=2026, scenario="baseline", **kw) -> Alert:
    return Alert(alert_type, severity, component, year, scenario, title=kw.pop("title", "title"),
                 message=kw.pop("message", "message"), **kw)


def config(routes=(), **top) -> AlertConfig:
    return parse_alert_config({"channels": CHANNELS, "routes": list(routes), **top}, SOURCE)


def docstring_block(marker: str) -> str:
    return textwrap.dedent(alert_config.__doc__.split(marker)[1].split("\n\nRoutes")[0])


# -- the documented examples ---------------------------------------------------------------------

def test_the_docstring_yaml_parses_without_its_env_vars_set(monkeypatch):
    for name in ("PLANWISE_ALERT_WEBHOOK_URL", "PLANWISE_SLACK_WEBHOOK_URL", "PLANWISE_SMTP_PASSWORD",
                 "PLANWISE_SMTP_USER"):
        monkeypatch.delenv(name, raising=False)  # env vars are read at send time, not at load time
    cfg = parse_alert_config(yaml.safe_load(docstring_block("read at send time)::\n\n")), SOURCE)
    assert (cfg.throttle_seconds, cfg.max_attempts, cfg.retry_backoff_seconds) == (3600, 5, 0.5)
    assert cfg.default_channels == ("log",)
    assert {n: c.type for n, c in cfg.channels.items()} == {
        "log": ChannelType.LOG, "audit": ChannelType.FILE, "ops_webhook": ChannelType.WEBHOOK,
        "slack": ChannelType.SLACK, "pager": ChannelType.APPRISE, "mail": ChannelType.EMAIL}
    assert cfg.channels["pager"].options == {"url_env": "PLANWISE_PAGER_URL"}
    mail = cfg.channels["mail"].options
    assert (mail["port"], mail["to"], mail["username_env"], mail["password_env"], mail["starttls"]) == (
        25, ("ops@localhost",), "PLANWISE_SMTP_USER", "PLANWISE_SMTP_PASSWORD", False)
    assert cfg.routes[0].continue_matching and cfg.routes[1].components == ("scd_*",)


def test_the_docstring_python_example_runs():
    exec(textwrap.dedent(alert_policy.__doc__.split("``default_channels``::\n\n")[1]), {})


def test_an_empty_file_is_the_default_config(tmp_path: Path):
    path = tmp_path / "alerts.yaml"
    path.write_text("")
    cfg = load_alert_config(path)
    assert cfg == AlertConfig()
    assert list(cfg.channels) == ["log"] and cfg.default_channels == ("log",)
    assert (cfg.throttle_seconds, cfg.max_attempts, cfg.retry_backoff_seconds) == (3600, 5, 0.5)


# -- parse errors: each names its entry ---------------------------------------------------------

@pytest.mark.parametrize(
    "raw, expected",
    [
        ([1, 2], "alerts.yaml: expected a mapping"),
        ({"throttel": "1h"}, "alerts.yaml: unknown top-level key(s) ['throttel']"),
        ({"channels": ["log"]}, "alerts.yaml: channels must be a mapping"),
        ({"channels": {"pager": {"type": "pagerduty"}}}, "alerts.yaml: channels.pager: unknown type 'pagerduty'"),
        ({"channels": {"pager": {"kind": "log"}}}, "alerts.yaml: channels.pager: missing type"),
        ({"channels": {"pager": "log"}}, "alerts.yaml: channels.pager: expected a mapping"),
        ({"channels": {"hook": {"type": "webhook", "url": "https://example.invalid/T0KEN"}}},
         "alerts.yaml: channels.hook: 'url' must not be written in the file; put it in an environment variable "
         "and name that variable with 'url_env'"),
        ({"channels": {"mail": {**CHANNELS["mail"], "password": "hunter2"}}},
         "alerts.yaml: channels.mail: 'password' must not be written in the file"),
        ({"channels": {"mail": {**CHANNELS["mail"], "username": "ops"}}}, "name that variable with 'username_env'"),
        ({"channels": {"hook": {"type": "webhook"}}}, "alerts.yaml: channels.hook: a webhook channel needs url_env"),
        ({"channels": {"hook": {"type": "slack", "url_env": ""}}},
         "alerts.yaml: channels.hook: url_env must name an environment variable"),
        ({"channels": {"hook": {"type": "webhook", "url_env": "   "}}},
         "alerts.yaml: channels.hook: url_env must name an environment variable"),
        ({"channels": {"hook": {"type": "webhook", "url_env": "https://hooks.example/T0KEN"}}},
         "alerts.yaml: channels.hook: url_env must be the NAME of an environment variable"),
        ({"channels": {"hook": {"type": "webhook", "url_env": "X", "timeout_seconds": 0}}},
         "alerts.yaml: channels.hook: timeout_seconds: must be > 0"),
        ({"channels": {"log": {"type": "log", "path": "x"}}},
         "alerts.yaml: channels.log: unknown key(s) ['path'] for a log channel; allowed: ['type']"),
        ({"channels": {"audit": {"type": "file"}}}, "alerts.yaml: channels.audit: a file channel needs path"),
        ({"channels": {"mail": {k: v for k, v in CHANNELS["mail"].items() if k != "to"}}},
         "alerts.yaml: channels.mail: to must be a non-empty list of addresses"),
        ({"channels": {"mail": {**CHANNELS["mail"], "to": []}}}, "alerts.yaml: channels.mail: to must be"),
        ({"channels": {"mail": {k: v for k, v in CHANNELS["mail"].items() if k != "host"}}},
         "alerts.yaml: channels.mail: an email channel needs host"),
        ({"channels": {"mail": {**CHANNELS["mail"], "port": "25"}}},
         "alerts.yaml: channels.mail: port must be a whole number between 1 and 65535, got '25'"),
        ({"channels": {"mail": {**CHANNELS["mail"], "starttls": "yes"}}},
         "alerts.yaml: channels.mail: starttls must be true or false"),
        ({"channels": {"mail": {**CHANNELS["mail"], "password_env": "PLANWISE_SMTP_PASSWORD"}}},
         "alerts.yaml: channels.mail: username_env and password_env go together"),
        ({"channels": {"mail": {**CHANNELS["mail"], "username_env": "", "password_env": "P"}}},
         "alerts.yaml: channels.mail: username_env must name an environment variable"),
        ({"channels": CHANNELS, "routes": [{"channels": ["log"]}, {"channels": ["pager"]}]},
         "alerts.yaml: routes[1]: unknown channel 'pager'; "
         "defined channels: ['audit', 'hook', 'log', 'mail', 'slack']"),
        ({"routes": {"channels": ["log"]}}, "alerts.yaml: routes must be a list"),
        ({"routes": ["log"]}, "alerts.yaml: routes[0]: expected a mapping"),
        ({"routes": [{"severities": ["ERROR"]}]}, "alerts.yaml: routes[0]: missing channels"),
        ({"routes": [{"channels": []}]}, "alerts.yaml: routes[0]: channels must be a non-empty list"),
        ({"routes": [{"severity": ["ERROR"], "channels": ["log"]}]},
         "alerts.yaml: routes[0]: unknown key(s) ['severity']; allowed: ['alert_types', 'channels', 'components', "
         "'continue', 'severities']"),
        ({"routes": [{"severities": ["FATAL"], "channels": ["log"]}]},
         "alerts.yaml: routes[0]: unknown severity 'FATAL'; one of ['INFO', 'WARNING', 'ERROR', 'CRITICAL']"),
        ({"routes": [{"severities": "ERROR", "channels": ["log"]}]},
         "alerts.yaml: routes[0]: severities must be a list of names, e.g. [ERROR, CRITICAL]"),
        ({"routes": [{"alert_types": ["SLA"], "channels": ["log"]}]},
         "alerts.yaml: routes[0]: unknown alert type 'SLA'"),
        ({"routes": [{"components": "scd_*", "channels": ["log"]}]},
         "alerts.yaml: routes[0]: components must be a list of names"),
        ({"routes": [{"channels": ["log"], "continue": "yes"}]},
         "alerts.yaml: routes[0]: continue must be true or false"),
        ({"default_channels": ["pager"]}, "alerts.yaml: default_channels: unknown channel 'pager'"),
        ({"default_channels": []}, "alerts.yaml: default_channels: channels must be a non-empty list"),
        ({"throttle": "1 fortnight"}, "alerts.yaml: throttle: expected a duration such as 3600"),
        ({"throttle": "-5m"}, "alerts.yaml: throttle: expected a duration"),
        ({"throttle": -1}, "alerts.yaml: throttle: must be >= 0, got -1"),
        ({"throttle": True}, "alerts.yaml: throttle: expected a duration"),
        ({"throttle": "1h", "throttle_seconds": 60}, "alerts.yaml: give throttle or throttle_seconds, not both"),
        ({"retry_backoff": "soon"}, "alerts.yaml: retry_backoff: expected a duration"),
        ({"max_attempts": 0}, "alerts.yaml: max_attempts must be a whole number >= 1, got 0"),
        ({"max_attempts": 2.5}, "alerts.yaml: max_attempts must be a whole number >= 1"),
    ],
)
def test_parse_errors_name_the_entry(raw, expected):
    with pytest.raises(AlertConfigError) as info:
        parse_alert_config(raw, SOURCE)
    assert expected in str(info.value)


@pytest.mark.parametrize("key, value", [("url", "https://hooks.example/T0KEN-secret"),
                                        ("url_env", "https://hooks.example/T0KEN-secret")])
def test_a_url_written_into_the_file_is_not_echoed_in_the_error(key, value):
    with pytest.raises(AlertConfigError) as info:
        parse_alert_config({"channels": {"hook": {"type": "webhook", key: value}}}, SOURCE)
    assert "T0KEN" not in str(info.value)


def test_file_errors_name_the_file_and_the_line(tmp_path: Path):
    path = tmp_path / "alerts.yaml"
    path.write_text("channels:\n  log: {type: log\nroutes: []\n")
    with pytest.raises(AlertConfigError, match=r"alerts file .*alerts.yaml is not valid YAML at line \d+"):
        load_alert_config(path)
    path.write_text("routes:\n  - {channels: [pager]}\n")
    with pytest.raises(AlertConfigError, match=rf"^{path}: routes\[0\]: unknown channel 'pager'"):
        load_alert_config(path)
    with pytest.raises(AlertConfigError, match="cannot read alerts file"):
        load_alert_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "value, seconds",
    [(3600, 3600), (0, 0), (1.5, 1.5), ("90s", 90), ("30m", 1800), ("1h", 3600), ("1h30m", 5400),
     ("2d", 172800), ("250ms", 0.25), ("45", 45), (" 10 m ", 600)],
)
def test_durations(value, seconds):
    assert parse_duration(value, "x") == pytest.approx(seconds)
    assert parse_alert_config({"throttle": value}, SOURCE).throttle_seconds == pytest.approx(seconds)


def test_duration_aliases_and_names_are_accepted():
    cfg = parse_alert_config({"throttle_seconds": 60, "retry_backoff_seconds": 0.01}, SOURCE)
    assert (cfg.throttle_seconds, cfg.retry_backoff_seconds) == (60, 0.01)
    cfg = parse_alert_config({"routes": [{"severities": ["error"], "alert_types": ["sla_breach"],
                                          "channels": "log"}]}, SOURCE)
    assert cfg.routes[0] == Route(frozenset({Severity.ERROR}), frozenset({AlertType.SLA_BREACH}), (), ("log",))


def test_a_config_built_in_code_is_checked_too():
    with pytest.raises(AlertConfigError, match=r"routes\[0\]: unknown channel 'pager'"):
        AlertConfig(routes=(Route(channels=("pager",)),))
    cfg = AlertConfig(channels={"hook": ChannelConfig("hook", "webhook", {"url_env": "X"})},
                      routes=(Route(channels=("hook",)),))
    assert set(cfg.channels) == {"hook", "log"}  # the log channel is always there


# -- routing ------------------------------------------------------------------------------------

ROUTES = [
    {"severities": ["ERROR", "CRITICAL"], "channels": ["hook", "slack", "audit"], "continue": True},
    {"alert_types": ["REGRESSION"], "components": ["scd_*"], "channels": ["mail"]},
    {"alert_types": ["REGRESSION"], "channels": ["audit"]},
    {"components": ["fct_*", "int_baseline_workforce"], "severities": ["WARNING"], "channels": ["slack"]},
]


@pytest.mark.parametrize(
    "a, expected",
    [
        # matched and continued, later routes do not match: only the first route's channels
        (alert(AlertType.SLA_BREACH, Severity.ERROR), ["hook", "slack", "audit"]),
        # continued into the REGRESSION route, whose glob matches; it stops there (no 'continue')
        (alert(AlertType.REGRESSION, Severity.CRITICAL, "scd_workforce_state"), ["hook", "slack", "audit", "mail"]),
        # the glob does not match: the next REGRESSION route; 'audit' is not repeated
        (alert(AlertType.REGRESSION, Severity.CRITICAL, "fct_yearly_events"), ["hook", "slack", "audit"]),
        # first match wins: the scd route stops before the generic REGRESSION route
        (alert(AlertType.REGRESSION, Severity.WARNING, "scd_workforce_state"), ["mail"]),
        (alert(AlertType.REGRESSION, Severity.WARNING, "fct_yearly_events"), ["audit"]),
        (alert(AlertType.SLA_WARNING, Severity.WARNING, "fct_yearly_events"), ["slack"]),
        (alert(AlertType.SLA_WARNING, Severity.WARNING, "int_baseline_workforce"), ["slack"]),
        # globs are case-sensitive and whole-name
        (alert(AlertType.SLA_WARNING, Severity.WARNING, "FCT_yearly_events"), ["log"]),
        (alert(AlertType.SLA_WARNING, Severity.WARNING, "int_baseline_workforce_2"), ["log"]),
        # no route matches: the default channels
        (alert(AlertType.SLA_WARNING, Severity.WARNING, "scd_workforce_state"), ["log"]),
        (alert(AlertType.RUN_FAILURE, Severity.INFO, None), ["log"]),
        # an alert without a component never matches a component glob other than "*"
        (alert(AlertType.REGRESSION, Severity.WARNING, None), ["audit"]),
    ],
)
def test_route(a, expected):
    assert route(a, config(ROUTES)) == expected


def test_route_default_channels_and_star_glob():
    cfg = config([{"components": ["*"], "severities": ["CRITICAL"], "channels": ["mail"]}],
                 default_channels=["audit", "log"])
    assert route(alert(severity=Severity.CRITICAL, component=None), cfg) == ["mail"]
    assert route(alert(severity=Severity.ERROR), cfg) == ["audit", "log"]
    assert route(alert(), parse_alert_config(None, SOURCE)) == ["log"]


# -- dedup and throttle -------------------------------------------------------------------------

NOW = datetime(2026, 3, 1, 12, 0, 0)


@pytest.mark.parametrize(
    "last_sent_at, throttle, expected",
    [
        (None, 3600, True),  # never sent
        (NOW, 3600, False),  # the same moment: a duplicate
        (NOW - timedelta(minutes=59, seconds=59), 3600, False),  # inside the window
        (NOW - timedelta(hours=1), 3600, True),  # the window has passed
        (NOW - timedelta(days=3), 3600, True),
        (NOW + timedelta(minutes=5), 3600, False),  # clock skew: inside the window, not a reason to resend
        (NOW - timedelta(seconds=1), 0, True),  # no throttle
        (NOW, 0, True),
        (NOW - timedelta(seconds=89), 90, False),
        (NOW - timedelta(seconds=90), 90, True),
    ],
)
def test_should_send(last_sent_at, throttle, expected):
    assert should_send(alert(), last_sent_at, NOW, throttle) is expected


@pytest.mark.parametrize(
    "other, same",
    [
        (alert(), True),
        (alert(title="another title", message="another message", simulation_run_id="run-9"), True),
        (alert(severity=Severity.CRITICAL), True),  # severity is not part of the identity
        (alert(year=2027), False),
        (alert(component="fct_yearly_events"), False),
        (alert(AlertType.SLA_WARNING), False),
        (alert(scenario="high_growth"), False),
    ],
)
def test_fingerprint_is_component_year_type_and_scenario(other, same):
    assert alert().fingerprint == "scd_workforce_state|2026|SLA_BREACH|baseline"
    assert (other.fingerprint == alert().fingerprint) is same


def test_alert_payload_and_validation():
    import numpy as np

    pid = "7d3c8d0e-5b8f-4e9e-9b7a-8d6c1f0a2b3c"
    a = Alert("REGRESSION", "CRITICAL", None, None, "baseline", "t", "m", performance_id=pid.upper(),
              details={"z": np.int64(3), "a": 1.5, "when": datetime(2026, 1, 1)})
    assert (a.alert_type, a.severity, a.performance_id) == (AlertType.REGRESSION, Severity.CRITICAL, pid)
    assert a.fingerprint == "||REGRESSION|baseline"
    assert a.details == (("a", 1.5), ("when", "2026-01-01T00:00:00"), ("z", 3))
    payload = json.loads(json.dumps(a.to_dict()))
    assert payload["details"] == {"a": 1.5, "when": "2026-01-01T00:00:00", "z": 3}
    assert payload["severity"] == "CRITICAL" and payload["fingerprint"] == a.fingerprint
    for bad, message in [(dict(performance_id="perf-1"), "performance_id must be a UUID"),
                         (dict(details={"x": object()}), "details must be JSON-serialisable"),
                         (dict(simulation_year="2026"), "simulation_year must be a whole number"),
                         (dict(severity="FATAL"), "'FATAL' is not a valid Severity"),
                         (dict(title=" "), "title must be a non-empty string")]:
        fields = dict(alert_type="SLA_BREACH", severity="ERROR", component_name="c", simulation_year=2026,
                      scenario="s", title="t", message="m")
        with pytest.raises(ValueError, match=message):
            Alert(**{**fields, **bad})
