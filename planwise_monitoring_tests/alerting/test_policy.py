from __future__ import annotations

import json
import textwrap
from datetime import datetime, timedelta

import pytest

from planwise_monitoring.alerting import policy as alert_policy
from planwise_monitoring.alerting.config import parse_alert_config
from planwise_monitoring.alerting.policy import (
    Alert,
    AlertConfig,
    AlertConfigError,
    AlertType,
    ChannelConfig,
    Route,
    Severity,
    route,
    should_send,
)

from .helpers import CHANNELS, SOURCE


def alert(alert_type=AlertType.SLA_BREACH, severity=Severity.ERROR, component="scd_workforce_state",
          year=2026, scenario="baseline", **kw) -> Alert:
    return Alert(alert_type, severity, component, year, scenario, title=kw.pop("title", "title"),
                 message=kw.pop("message", "message"), **kw)


def config(routes=(), **top) -> AlertConfig:
    return parse_alert_config({"channels": CHANNELS, "routes": list(routes), **top}, SOURCE)


# -- the documented example ---------------------------------------------------------------------

def test_the_docstring_python_example_runs():
    exec(textwrap.dedent(alert_policy.__doc__.split("``default_channels``::\n\n")[1]), {})


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
