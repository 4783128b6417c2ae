"""Alert policy: what an alert is, where it goes, and whether it goes at all.

Pure decisions, no I/O. Delivery (HTTP, SMTP, apprise, files, the notification log in ``mon_alerts``)
is :mod:`planwise_monitoring.alerting.dispatcher` and :mod:`planwise_monitoring.alerting.channels`.
The design follows Prometheus Alertmanager: routing is configuration, deduplication and throttling
are a pure decision over the notification log, and delivery is a separate stage with retries.

The alerts file and its validation are :mod:`planwise_monitoring.alerting.config`.

Routes are tried in order and the first match wins, unless it says ``continue: true``; an alert
that matches no route goes to ``default_channels``::

    from datetime import datetime, timedelta
    from planwise_monitoring.alerting.config import parse_alert_config
    from planwise_monitoring.alerting.policy import Alert, AlertType, Severity, route, should_send

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
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from types import MappingProxyType
from typing import Any


class AlertConfigError(ValueError):
    """An alerts file or alert configuration is malformed; the message names the entry."""


class AlertType(str, Enum):
    SLA_WARNING = "SLA_WARNING"
    SLA_BREACH = "SLA_BREACH"
    REGRESSION = "REGRESSION"
    RUN_FAILURE = "RUN_FAILURE"
    OPTIMIZATION_NOT_CONVERGED = "OPTIMIZATION_NOT_CONVERGED"
    OPTIMIZATION_SLOW = "OPTIMIZATION_SLOW"  # converged, in more iterations than the warning threshold
    PARAMETER_EXTREME = "PARAMETER_EXTREME"  # a final parameter value outside its configured bounds
    SLO_FAST_BURN = "SLO_FAST_BURN"  # an SLO's error budget burning fast enough to page
    SLO_SLOW_BURN = "SLO_SLOW_BURN"  # burning slowly: a ticket


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
    """A named destination. ``options`` are the type's settings (see :mod:`.config`);
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


def fingerprints(alerts: Sequence[Alert]) -> list[str]:
    """Distinct fingerprints in order: the notification-log lookup for a batch."""
    return list(dict.fromkeys(a.fingerprint for a in alerts))


# The file's parsing moved to .config (pydantic models); these names stay importable from here.
_MOVED_TO_CONFIG = frozenset({"load_alert_config", "parse_alert_config", "parse_duration"})


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_CONFIG:
        from . import config  # imported late: config builds on the classes above

        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
