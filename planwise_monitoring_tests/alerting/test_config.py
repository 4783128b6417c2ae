"""The alerts file's pydantic models: strict, finite, short errors naming the file, entry and field;
every parse error and its wording; the documented examples."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from planwise_monitoring.alerting import config as alert_config
from planwise_monitoring.alerting.config import (
    AlertsFile,
    EmailChannelModel,
    load_alert_config,
    parse_alert_config,
    parse_duration,
)
from planwise_monitoring.alerting.policy import AlertConfig, AlertConfigError, AlertType, ChannelType, Route, Severity

from .helpers import CHANNELS, SOURCE


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



@pytest.mark.parametrize("raw, expected", [
    ({"throttle": float("inf")}, "alerts.yaml: throttle: expected a duration such as 3600"),
    ({"retry_backoff_seconds": float("nan")}, "alerts.yaml: retry_backoff_seconds: expected a duration"),
    ({"channels": {"hook": {"type": "webhook", "url_env": "X", "timeout_seconds": float("inf")}}},
     "alerts.yaml: channels.hook: timeout_seconds: expected a duration"),
])
def test_infinite_durations_are_refused(raw, expected):
    """inf passed the hand-written duration check (only NaN was caught): an infinite throttle sent
    an alert once and never again."""
    with pytest.raises(AlertConfigError) as info:
        parse_alert_config(raw, SOURCE)
    assert str(info.value).startswith(expected)


@pytest.mark.parametrize("raw, expected", [
    ({"max_attempts": True}, "alerts.yaml: max_attempts must be a whole number >= 1, got True"),
    ({"channels": {"pager": {"type": "apprise"}}},
     "alerts.yaml: channels.pager: an apprise channel needs url_env (the environment variable that holds the URL)"),
    ({"channels": {"pager": {"type": "apprise", "url_env": "P", "path": "x"}}},
     "alerts.yaml: channels.pager: unknown key(s) ['path'] for an apprise channel; "
     "allowed: ['timeout_seconds', 'type', 'url_env']"),
    ({"channels": {"mail": {"type": "email", "host": "h", "from": "a@b", "to": ["nobody"]}}},
     "alerts.yaml: channels.mail: to must be a non-empty list of addresses"),
    ({"channels": {7: {"type": "log"}}}, "alerts.yaml: channels: channel names must be non-empty strings, got 7"),
])
def test_errors_name_the_entry_and_field(raw, expected):
    with pytest.raises(AlertConfigError) as info:
        parse_alert_config(raw, SOURCE)
    assert str(info.value).startswith(expected)


def test_long_values_are_never_quoted_whole():
    huge = "x" * 1_000_000
    for raw in ({huge: 1}, {"channels": {"hook": {"type": huge}}}, {"routes": [{"severities": [huge], "channels": ["log"]}]},
                {"default_channels": [huge]}, {"throttle": huge}, {"channels": {"h": {"type": "log", huge: 1}}}):
        with pytest.raises(AlertConfigError) as info:
            parse_alert_config(raw, SOURCE)
        assert len(str(info.value)) < 400, str(info.value)[:200]


def test_the_models_are_the_schema():
    schema = AlertsFile.model_json_schema()
    assert schema["additionalProperties"] is False
    assert {"throttle", "max_attempts", "channels", "routes", "default_channels"} <= set(schema["properties"])
    assert "from" in EmailChannelModel.model_json_schema()["properties"]  # the file's key, not the attribute


def test_a_parsed_email_channel_keeps_todays_options():
    config = parse_alert_config({"channels": {"mail": {"type": "email", "host": " h ", "from": "a@b", "to": "ops@b",
                                                       "timeout_seconds": "2s"}}}, SOURCE)
    mail = config.channels["mail"]
    assert mail.type is ChannelType.EMAIL
    assert dict(mail.options) == {"host": "h", "from": "a@b", "to": ("ops@b",), "port": 25, "starttls": False,
                                  "timeout_seconds": 2.0}


def test_the_demo_file_and_the_channels_its_comments_suggest_are_valid():
    path = Path(__file__).parents[2] / "planwise_monitoring" / "demo" / "alerts.yaml"
    assert load_alert_config(path).routes[0].channels == ("log", "audit")
    suggested = [line.lstrip("# ").split("  #")[0] for line in path.read_text().splitlines()
                 if line.startswith("#   ") and "{type:" in line]
    channels = yaml.safe_load("\n".join(suggested))
    assert set(channels) == {"ops_webhook", "slack", "pager"}
    parsed = parse_alert_config({"channels": channels}, str(path))
    assert parsed.channels["pager"].type is ChannelType.APPRISE
