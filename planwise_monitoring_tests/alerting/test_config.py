"""The alerts file's pydantic models: strict, finite, short errors naming the file, entry and field.
(The table of every parse error and its wording is in test_policy.py.)"""

from __future__ import annotations

import pytest

from planwise_monitoring.alerting.config import AlertsFile, EmailChannelModel, parse_alert_config
from planwise_monitoring.alerting.policy import AlertConfigError, ChannelType

SOURCE = "alerts.yaml"


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
    from pathlib import Path

    import yaml

    from planwise_monitoring.alerting.config import load_alert_config

    path = Path(__file__).parents[2] / "planwise_monitoring" / "demo" / "alerts.yaml"
    assert load_alert_config(path).routes[0].channels == ("log", "audit")
    suggested = [line.lstrip("# ").split("  #")[0] for line in path.read_text().splitlines()
                 if line.startswith("#   ") and "{type:" in line]
    channels = yaml.safe_load("\n".join(suggested))
    assert set(channels) == {"ops_webhook", "slack", "pager"}
    parsed = parse_alert_config({"channels": channels}, str(path))
    assert parsed.channels["pager"].type is ChannelType.APPRISE
