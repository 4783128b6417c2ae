"""Alert policy: what an alert is, where it goes, and whether it goes at all.

Pure decisions, no I/O except reading a YAML file in :func:`load_alert_config`. Delivery (HTTP,
SMTP, files, the notification log in ``mon_alerts``) is :mod:`planwise_monitoring.alerting.delivery`.
The design follows Prometheus Alertmanager: routing is configuration, deduplication and throttling
are a pure decision over the notification log, and delivery is a separate stage with retries.

An alerts file (secrets only ever as the NAMES of environment variables, read at send time)::

    throttle: 1h              # at most one alert per fingerprint per hour (seconds, or 90s/30m/1h/1d)
    max_attempts: 5           # a delivery is 'failed' after this many tries
    retry_backoff: 0.5s       # first pause between tries; doubles on each retry
    default_channels: [log]   # for alerts that match no route
    channels:
      log: {type: log}
      audit: {type: file, path: artifacts/alerts.jsonl}
      ops_webhook: {type: webhook, url_env: PLANWISE_ALERT_WEBHOOK_URL}
      slack: {type: slack, url_env: PLANWISE_SLACK_WEBHOOK_URL}
      pager: {type: apprise, url_env: PLANWISE_PAGER_URL}   # e.g. pagerduty://..., msteams://...
      mail: {type: email, host: localhost, port: 25, from: planwise@localhost, to: [ops@localhost],
             password_env: PLANWISE_SMTP_PASSWORD, username_env: PLANWISE_SMTP_USER}
    routes:
      - {severities: [ERROR, CRITICAL], channels: [ops_webhook, slack, audit], continue: true}
      - {alert_types: [REGRESSION], components: ["scd_*"], channels: [mail]}

Routes are tried in order and the first match wins, unless it says ``continue: true``; an alert
that matches no route goes to ``default_channels``::

    from datetime import datetime, timedelta
    from planwise_monitoring.alerting.policy import (
        Alert, AlertType, Severity, parse_alert_config, route, should_send)

    config = parse_alert_config({
        "channels": {"audit": {"type": "file", "path": "alerts.jsonl"}},
        "routes": [{"severities": ["ERROR", "CRITICAL"], "channels": ["audit"], "continue": True}],
    }, "alerts.yaml")
    alert = Alert(AlertType.SLA_BREACH, Severity.ERROR, "scd_workforce_state", 2026, "baseline",
                  title="scd_workforce_state 2026 breached its SLA", message="150.0s > 120.0s")
    assert route(alert, config) == ["audit"]  # continued, but no later route matched: no default
    now = datetime(2026, 1, 1, 12, 0)
    assert not should_send(alert, now - timedelta(minutes=5), now, config.throttle_seconds)
"""

from __future__ import annotations

import fnmatch
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..yaml_files import read_yaml


class AlertConfigError(ValueError):
    """An alerts file or alert configuration is malformed; the message names the entry."""


class AlertType(str, Enum):
    SLA_WARNING = "SLA_WARNING"
    SLA_BREACH = "SLA_BREACH"
    REGRESSION = "REGRESSION"
    RUN_FAILURE = "RUN_FAILURE"


class Severity(str, Enum):
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


class ChannelType(str, Enum):
    LOG = "log"  # a Dagster context.log or a Python logger
    FILE = "file"  # one JSON line per alert, appended
    WEBHOOK = "webhook"  # JSON POST of Alert.to_dict()
    SLACK = "slack"  # Slack incoming webhook
    EMAIL = "email"  # plain-text mail over SMTP
    APPRISE = "apprise"  # any of apprise's 100+ services, by URL (Teams, PagerDuty, Opsgenie, Discord…)


def _plain(value: Any) -> Any:
    """numpy scalars and datetimes, which metadata often holds, as their JSON equivalents."""
    if isinstance(value, datetime):
        return value.isoformat()
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (str, bytes, list, tuple, dict)):
        try:
            return item()
        except (TypeError, ValueError):
            return value
    return value


@dataclass(frozen=True)
class Alert:
    """One thing worth telling someone about. ``details`` holds extra JSON-serialisable facts
    (a mapping is accepted and stored as sorted ``(key, value)`` pairs, so the alert stays frozen)."""

    alert_type: AlertType
    severity: Severity
    component_name: str | None
    simulation_year: int | None
    scenario: str
    title: str
    message: str
    simulation_run_id: str | None = None
    performance_id: str | None = None
    details: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        # Coerce and check here rather than at insert time: one bad alert must not fail the
        # INSERT of a whole batch (performance_id is a UUID column in mon_alerts).
        try:
            object.__setattr__(self, "alert_type", AlertType(self.alert_type))
            object.__setattr__(self, "severity", Severity(self.severity))
        except ValueError as exc:
            raise ValueError(f"Alert: {exc}") from None
        if self.simulation_year is not None and (isinstance(self.simulation_year, bool)
                                                 or not isinstance(self.simulation_year, int)):
            raise ValueError(f"Alert: simulation_year must be a whole number or None, got {self.simulation_year!r}")
        if not isinstance(self.scenario, str):
            raise ValueError(f"Alert: scenario must be a string, got {self.scenario!r}")
        if not isinstance(self.title, str) or not self.title.strip():
            raise ValueError("Alert: title must be a non-empty string")
        if not isinstance(self.message, str):
            raise ValueError(f"Alert: message must be a string, got {type(self.message).__name__}")
        if self.performance_id is not None:
            try:
                object.__setattr__(self, "performance_id", str(uuid.UUID(str(self.performance_id))))
            except ValueError:
                raise ValueError(f"Alert: performance_id must be a UUID, got {self.performance_id!r}") from None
        details = self.details.items() if isinstance(self.details, Mapping) else self.details
        pairs = tuple(sorted(((k, _plain(v)) for k, v in details), key=lambda kv: kv[0]))
        if any(not isinstance(k, str) for k, _ in pairs):
            raise ValueError("Alert: details keys must be strings")
        try:
            json.dumps(dict(pairs))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Alert: details must be JSON-serialisable: {exc}") from None
        object.__setattr__(self, "details", pairs)

    @property
    def fingerprint(self) -> str:
        """The dedup key: the same component, year, alert type and scenario is the same alert."""
        year = "" if self.simulation_year is None else str(self.simulation_year)
        return f"{self.component_name or ''}|{year}|{self.alert_type.value}|{self.scenario}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON payload of webhooks and the file channel."""
        return {
            "fingerprint": self.fingerprint,
            "alert_type": self.alert_type.value,
            "severity": self.severity.value,
            "component_name": self.component_name,
            "simulation_year": self.simulation_year,
            "scenario": self.scenario,
            "simulation_run_id": self.simulation_run_id,
            "performance_id": self.performance_id,
            "title": self.title,
            "message": self.message,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class ChannelConfig:
    """A named destination. ``options`` are the type's settings (see :data:`CHANNEL_OPTIONS`);
    secrets are only ever named by ``*_env`` options and resolved at send time."""

    name: str
    type: ChannelType
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", ChannelType(self.type))
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))


@dataclass(frozen=True)
class Route:
    """Sends matching alerts to ``channels``. An empty matcher matches anything; ``components`` are
    fnmatch globs (case-sensitive) matched against the component name, or "" for an alert without
    one, so ``"*"`` matches every alert."""

    severities: frozenset[Severity] = frozenset()
    alert_types: frozenset[AlertType] = frozenset()
    components: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    continue_matching: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "severities", frozenset(Severity(s) for s in self.severities))
        object.__setattr__(self, "alert_types", frozenset(AlertType(t) for t in self.alert_types))
        object.__setattr__(self, "components", tuple(self.components))
        object.__setattr__(self, "channels", tuple(self.channels))

    def matches(self, alert: Alert) -> bool:
        if self.severities and alert.severity not in self.severities:
            return False
        if self.alert_types and alert.alert_type not in self.alert_types:
            return False
        if self.components:
            name = alert.component_name or ""
            return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.components)
        return True


DEFAULT_CHANNEL = "log"  # always defined: a config without channels still says something


@dataclass(frozen=True)
class AlertConfig:
    """Channels by name, routes in order, and the delivery policy. A ``log`` channel exists even
    when not configured, so the defaults work without any file."""

    channels: Mapping[str, ChannelConfig] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    default_channels: tuple[str, ...] = (DEFAULT_CHANNEL,)
    throttle_seconds: float = 3600.0
    max_attempts: int = 5
    retry_backoff_seconds: float = 0.5

    def __post_init__(self) -> None:
        channels = dict(self.channels)
        channels.setdefault(DEFAULT_CHANNEL, ChannelConfig(DEFAULT_CHANNEL, ChannelType.LOG, {}))
        object.__setattr__(self, "channels", MappingProxyType(channels))
        object.__setattr__(self, "routes", tuple(self.routes))
        object.__setattr__(self, "default_channels", tuple(self.default_channels))
        # A backstop for configs built in code; parse_alert_config reports these with the entry.
        for where, names in [("default_channels", self.default_channels),
                             *((f"routes[{i}]", r.channels) for i, r in enumerate(self.routes))]:
            if not names:
                raise AlertConfigError(f"AlertConfig: {where}: needs at least one channel")
            for name in names:
                if name not in channels:
                    raise AlertConfigError(f"AlertConfig: {where}: unknown channel {name!r}")


def route(alert: Alert, config: AlertConfig) -> list[str]:
    """The channels an alert goes to, in order and without repeats (Alertmanager semantics: the
    first matching route wins unless it says ``continue``; no match at all → default_channels)."""
    channels: list[str] = []
    matched = False
    for r in config.routes:
        if not r.matches(alert):
            continue
        matched = True
        channels.extend(c for c in r.channels if c not in channels)
        if not r.continue_matching:
            break
    return channels if matched else list(config.default_channels)


def should_send(alert: Alert, last_sent_at: datetime | None, now: datetime, throttle_seconds: float) -> bool:
    """At most one alert per fingerprint per throttle window. ``last_sent_at`` is when the alert's
    fingerprint last produced a non-suppressed alert (naive UTC, like ``now``); a timestamp in
    the future (clock skew between hosts) counts as inside the window rather than as a reason to
    send twice."""
    del alert  # the window is per fingerprint, which the caller used to look up last_sent_at
    if last_sent_at is None:
        return True
    return (now - last_sent_at).total_seconds() >= throttle_seconds


# -- parsing -------------------------------------------------------------------------------------

# Durations have a short name and a *_seconds alias (the dataclass field's name); one of each at most.
_DURATION_KEYS = {"throttle": "throttle_seconds", "retry_backoff": "retry_backoff_seconds"}
_TOP_LEVEL = {"max_attempts", "default_channels", "channels", "routes", *_DURATION_KEYS, *_DURATION_KEYS.values()}
_ROUTE_KEYS = {"severities", "alert_types", "components", "channels", "continue"}
_NETWORK_TIMEOUT = {"timeout_seconds"}
CHANNEL_OPTIONS: Mapping[ChannelType, frozenset[str]] = MappingProxyType({
    ChannelType.LOG: frozenset(),
    ChannelType.FILE: frozenset({"path"}),
    ChannelType.WEBHOOK: frozenset({"url_env"} | _NETWORK_TIMEOUT),
    ChannelType.SLACK: frozenset({"url_env"} | _NETWORK_TIMEOUT),
    ChannelType.APPRISE: frozenset({"url_env"} | _NETWORK_TIMEOUT),
    ChannelType.EMAIL: frozenset({"host", "port", "from", "to", "username_env", "password_env", "starttls"}
                                 | _NETWORK_TIMEOUT),
})
# Literal secrets people will try; each gets told which *_env option to use instead.
_LITERAL_SECRETS = {"url": "url_env", "webhook_url": "url_env", "password": "password_env",
                    "username": "username_env", "user": "username_env"}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any, where: str, *, allow_zero: bool = True) -> float:
    """Seconds from a number or a string such as ``"90s"``, ``"30m"``, ``"1h"`` or ``"1h30m"``."""
    seconds: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif _DURATION.fullmatch(text):
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    if seconds is None or seconds != seconds:  # NaN sneaks through float("nan") otherwise
        raise AlertConfigError(f"{where}: expected a duration such as 3600, \"90s\", \"30m\" or \"1h\", got {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise AlertConfigError(f"{where}: must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return seconds


_LIST_EXAMPLES = {"severities": "[ERROR, CRITICAL]", "alert_types": "[SLA_BREACH, REGRESSION]",
                  "components": '["scd_*", "fct_yearly_events"]'}


def _string_list(raw: Any, where: str, what: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(x, str) and x.strip() for x in raw):
        raise AlertConfigError(f"{where}: {what} must be a list of names, e.g. {_LIST_EXAMPLES[what]}")
    return [x.strip() for x in raw]


def _env_name(raw: Any, where: str, key: str) -> str:
    # Never echo the value: a URL pasted here by mistake is exactly the secret we must not print.
    if not isinstance(raw, str) or not raw.strip():
        raise AlertConfigError(f"{where}: {key} must name an environment variable, e.g. PLANWISE_ALERT_WEBHOOK_URL")
    if not _ENV_NAME.fullmatch(raw.strip()):
        raise AlertConfigError(f"{where}: {key} must be the NAME of an environment variable (letters, digits, "
                               f"underscores), not its value")
    return raw.strip()


def parse_channel(name: Any, raw: Any, where: str) -> ChannelConfig:
    """Validate one ``channels:`` entry; errors name ``where`` (e.g. ``alerts.yaml: channels.mail``)."""
    if not isinstance(name, str) or not name.strip():
        raise AlertConfigError(f"{where}: channel names must be non-empty strings, got {name!r}")
    if not isinstance(raw, Mapping):
        raise AlertConfigError(f"{where}: expected a mapping such as {{type: log}}, got {type(raw).__name__}")
    if "type" not in raw:
        raise AlertConfigError(f"{where}: missing type; one of {[t.value for t in ChannelType]}")
    try:
        ctype = ChannelType(raw["type"])
    except ValueError:
        raise AlertConfigError(
            f"{where}: unknown type {raw['type']!r}; one of {[t.value for t in ChannelType]}") from None
    allowed = CHANNEL_OPTIONS[ctype]
    for key in map(str, raw):
        if key in _LITERAL_SECRETS and key not in allowed:
            raise AlertConfigError(
                f"{where}: '{key}' must not be written in the file; put it in an environment variable "
                f"and name that variable with '{_LITERAL_SECRETS[key]}'")
    unknown = sorted(set(map(str, raw)) - allowed - {"type"})
    if unknown:
        raise AlertConfigError(f"{where}: unknown key(s) {unknown} for a {ctype.value} channel; "
                               f"allowed: {sorted(allowed | {'type'})}")
    options: dict[str, Any] = {}
    if ctype is ChannelType.FILE:
        path = raw.get("path")
        if not isinstance(path, str) or not path.strip():
            raise AlertConfigError(f"{where}: a file channel needs path, e.g. artifacts/alerts.jsonl")
        options["path"] = path
    if ctype in (ChannelType.WEBHOOK, ChannelType.SLACK, ChannelType.APPRISE):
        if "url_env" not in raw:
            raise AlertConfigError(f"{where}: a {ctype.value} channel needs url_env (the environment variable "
                                   f"that holds the URL)")
        options["url_env"] = _env_name(raw["url_env"], where, "url_env")
    if ctype is ChannelType.EMAIL:
        for key in ("host", "from"):
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                raise AlertConfigError(f"{where}: an email channel needs {key} (a non-empty string)")
            options[key] = raw[key].strip()
        port = raw.get("port", 25)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise AlertConfigError(f"{where}: port must be a whole number between 1 and 65535, got {port!r}")
        options["port"] = port
        to = raw.get("to")
        if isinstance(to, str):
            to = [to]
        if not isinstance(to, list) or not to or not all(isinstance(x, str) and "@" in x for x in to):
            raise AlertConfigError(f"{where}: to must be a non-empty list of addresses, e.g. [ops@example.com]")
        options["to"] = tuple(x.strip() for x in to)
        if not isinstance(raw.get("starttls", False), bool):
            raise AlertConfigError(f"{where}: starttls must be true or false")
        options["starttls"] = raw.get("starttls", False)
        for key in ("username_env", "password_env"):
            if key in raw:
                options[key] = _env_name(raw[key], where, key)
        if ("username_env" in options) != ("password_env" in options):
            raise AlertConfigError(f"{where}: username_env and password_env go together (SMTP login needs both)")
    if "timeout_seconds" in raw:
        options["timeout_seconds"] = parse_duration(raw["timeout_seconds"], f"{where}: timeout_seconds",
                                                    allow_zero=False)
    return ChannelConfig(name.strip(), ctype, options)


def parse_route(raw: Any, where: str, channels: Iterable[str]) -> Route:
    """Validate one ``routes:`` entry against the defined channel names."""
    if not isinstance(raw, Mapping):
        raise AlertConfigError(f"{where}: expected a mapping such as {{severities: [ERROR], channels: [log]}}, "
                               f"got {type(raw).__name__}")
    unknown = sorted(set(map(str, raw)) - _ROUTE_KEYS)
    if unknown:
        raise AlertConfigError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(_ROUTE_KEYS)}")
    severities = _string_list(raw.get("severities", []), where, "severities")
    bad = [s for s in severities if s.upper() not in Severity.__members__]
    if bad:
        raise AlertConfigError(f"{where}: unknown severity {bad[0]!r}; one of {list(Severity.__members__)}")
    alert_types = _string_list(raw.get("alert_types", []), where, "alert_types")
    bad = [t for t in alert_types if t.upper() not in AlertType.__members__]
    if bad:
        raise AlertConfigError(f"{where}: unknown alert type {bad[0]!r}; one of {list(AlertType.__members__)}")
    components = _string_list(raw.get("components", []), where, "components")
    if "channels" not in raw:
        raise AlertConfigError(f"{where}: missing channels (the channels matching alerts go to)")
    names = _check_channels(raw["channels"], where, channels)
    if not isinstance(raw.get("continue", False), bool):
        raise AlertConfigError(f"{where}: continue must be true or false")
    return Route(
        severities=frozenset(Severity[s.upper()] for s in severities),
        alert_types=frozenset(AlertType[t.upper()] for t in alert_types),
        components=tuple(components),
        channels=tuple(names),
        continue_matching=raw.get("continue", False),
    )


def _check_channels(raw: Any, where: str, defined: Iterable[str]) -> list[str]:
    defined = sorted(defined)
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise AlertConfigError(f"{where}: channels must be a non-empty list of channel names")
    for name in raw:
        if name not in defined:
            raise AlertConfigError(f"{where}: unknown channel {name!r}; defined channels: {defined}")
    return list(dict.fromkeys(raw))


def parse_alert_config(raw: Any, source: str) -> AlertConfig:
    """Validate a parsed alerts file (see the module docstring); errors start with ``source``."""
    if raw is None:
        return AlertConfig()
    if not isinstance(raw, Mapping):
        raise AlertConfigError(f"{source}: expected a mapping with {sorted(_TOP_LEVEL)}")
    unknown = sorted(set(map(str, raw)) - _TOP_LEVEL)
    if unknown:
        raise AlertConfigError(f"{source}: unknown top-level key(s) {unknown}; allowed: {sorted(_TOP_LEVEL)}")
    raw_channels = raw.get("channels") or {}
    if not isinstance(raw_channels, Mapping):
        raise AlertConfigError(f"{source}: channels must be a mapping of name to {{type: ..., ...}}")
    channels = {str(name).strip(): parse_channel(name, entry, f"{source}: channels.{name}")
                for name, entry in raw_channels.items()}
    channels.setdefault(DEFAULT_CHANNEL, ChannelConfig(DEFAULT_CHANNEL, ChannelType.LOG, {}))
    raw_routes = raw.get("routes") or []
    if not isinstance(raw_routes, list):
        raise AlertConfigError(f"{source}: routes must be a list")
    routes = [parse_route(r, f"{source}: routes[{i}]", channels) for i, r in enumerate(raw_routes)]
    default_channels = _check_channels(raw.get("default_channels", [DEFAULT_CHANNEL]),
                                       f"{source}: default_channels", channels)
    max_attempts = raw.get("max_attempts", 5)
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise AlertConfigError(f"{source}: max_attempts must be a whole number >= 1, got {max_attempts!r}")
    durations = {}
    for short, long in _DURATION_KEYS.items():
        if short in raw and long in raw:
            raise AlertConfigError(f"{source}: give {short} or {long}, not both")
        key = short if short in raw else long
        if key in raw:
            durations[long] = parse_duration(raw[key], f"{source}: {key}")
    return AlertConfig(channels=channels, routes=tuple(routes), default_channels=tuple(default_channels),
                       max_attempts=max_attempts, **durations)


def load_alert_config(path: str | Path) -> AlertConfig:
    """Read an alerts YAML file (format in the module docstring). Environment variables named by
    ``*_env`` need not be set yet: they are read when an alert is sent."""
    return parse_alert_config(read_yaml(path, "alerts file", AlertConfigError), str(path))


def fingerprints(alerts: Sequence[Alert]) -> list[str]:
    """Distinct fingerprints in order: the notification-log lookup for a batch."""
    return list(dict.fromkeys(a.fingerprint for a in alerts))
