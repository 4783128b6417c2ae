"""The alerts file as pydantic models: what may be written, and errors naming the file, entry and field.

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
that matches no route goes to ``default_channels`` (see :mod:`.policy`)::

    from planwise_monitoring.alerting.config import parse_alert_config
    from planwise_monitoring.alerting.policy import AlertConfigError

    config = parse_alert_config({"channels": {"audit": {"type": "file", "path": "alerts.jsonl"}},
                                 "routes": [{"severities": ["ERROR"], "channels": ["audit"]}]}, "alerts.yaml")
    assert config.routes[0].channels == ("audit",)
    try:
        parse_alert_config({"channels": {"mail": {"type": "email", "host": "h", "from": "a@b", "to": ["c@d"],
                                                  "port": "25"}}}, "alerts.yaml")
    except AlertConfigError as exc:
        assert str(exc) == "alerts.yaml: channels.mail: port must be a whole number between 1 and 65535, got '25'"

The models are strict (``extra="forbid"``, no ``"25"`` for 25, no NaN) and are the schema of the
file; :func:`parse_alert_config` turns them into the frozen :class:`~.policy.AlertConfig` the
policy decides with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from ..yaml_files import duration_seconds, excerpt, read_yaml
from .policy import (
    DEFAULT_CHANNEL,
    AlertConfig,
    AlertConfigError,
    AlertType,
    ChannelConfig,
    ChannelType,
    Route,
    Severity,
)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Literal secrets people will try; each gets told which *_env option to use instead.
_LITERAL_SECRETS = {"url": "url_env", "webhook_url": "url_env", "password": "password_env",
                    "username": "username_env", "user": "username_env"}


def parse_duration(value: Any, where: str, *, allow_zero: bool = True) -> float:
    """Seconds from a number or a string such as ``"90s"``, ``"30m"``, ``"1h"`` or ``"1h30m"``.

        assert parse_duration("1h30m", "throttle") == 5400.0
    """
    try:
        return duration_seconds(value, allow_zero=allow_zero)
    except ValueError as exc:
        raise AlertConfigError(f"{where}: {exc}") from None


def _env_name(value: Any) -> str:
    # Never echo the value: a URL pasted here by mistake is exactly the secret we must not print.
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must name an environment variable, e.g. PLANWISE_ALERT_WEBHOOK_URL")
    if not _ENV_NAME.fullmatch(value.strip()):
        raise ValueError("must be the NAME of an environment variable (letters, digits, underscores), not its value")
    return value.strip()


def _names(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
        raise ValueError("must be a list of names")
    return [x.strip() for x in value]


def _one_of(enum: type[Severity] | type[AlertType], what: str) -> Any:
    def check(values: list[str]) -> list[str]:
        bad = [v for v in values if v.upper() not in enum.__members__]
        if bad:
            raise ValueError(f"unknown {what} {excerpt(bad[0])}; one of {list(enum.__members__)}")
        return [v.upper() for v in values]
    return check


def _channel_names(value: Any) -> list[str]:
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not value or not all(isinstance(x, str) for x in value):
        raise ValueError("channels must be a non-empty list of channel names")
    return list(dict.fromkeys(value))


Duration = Annotated[float, BeforeValidator(duration_seconds)]
Timeout = Annotated[float, BeforeValidator(lambda v: duration_seconds(v, allow_zero=False))]
EnvName = Annotated[str, BeforeValidator(_env_name)]
Names = Annotated[list[str], BeforeValidator(_names)]
ChannelNames = Annotated[list[str], BeforeValidator(_channel_names)]
NonEmpty = Annotated[str, AfterValidator(lambda v: v.strip() or _fail("must be a non-empty string"))]


def _fail(message: str) -> str:
    raise ValueError(message)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False, populate_by_name=True)


class LogChannelModel(_Model):
    """``{type: log}``: the Dagster log of the sensor (or a Python logger)."""

    type: Literal["log"]


class FileChannelModel(_Model):
    """``{type: file, path: artifacts/alerts.jsonl}``: one JSON line per alert."""

    type: Literal["file"]
    path: NonEmpty


class UrlChannelModel(_Model):
    """``{type: webhook|slack|apprise, url_env: NAME}``: the URL is read from ``$NAME`` at send time."""

    type: Literal["webhook", "slack", "apprise"]
    url_env: EnvName
    timeout_seconds: Timeout | None = None


class EmailChannelModel(_Model):
    """``{type: email, host, port, from, to, username_env, password_env, starttls}``."""

    type: Literal["email"]
    host: NonEmpty
    sender: NonEmpty = Field(alias="from")
    to: Annotated[list[Annotated[str, AfterValidator(lambda v: v.strip() if "@" in v else _fail("not an address"))]],
                  BeforeValidator(lambda v: [v] if isinstance(v, str) else v), Field(min_length=1)]
    port: int = Field(default=25, ge=1, le=65535)
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    starttls: bool = False
    timeout_seconds: Timeout | None = None

    @model_validator(mode="after")
    def _login_needs_both(self) -> EmailChannelModel:
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("username_env and password_env go together (SMTP login needs both)")
        return self


ChannelModel = Annotated[LogChannelModel | FileChannelModel | UrlChannelModel | EmailChannelModel,
                         Field(discriminator="type")]


class RouteModel(_Model):
    """``{severities, alert_types, components, channels, continue}``; empty matchers match anything."""

    severities: Annotated[Names, AfterValidator(_one_of(Severity, "severity"))] = []
    alert_types: Annotated[Names, AfterValidator(_one_of(AlertType, "alert type"))] = []
    components: Names = []
    channels: ChannelNames
    continue_matching: bool = Field(default=False, alias="continue")


class AlertsFile(_Model):
    """The whole file. ``throttle``/``retry_backoff`` also go by their ``*_seconds`` names, one of each."""

    throttle: Duration | None = None
    throttle_seconds: Duration | None = None
    retry_backoff: Duration | None = None
    retry_backoff_seconds: Duration | None = None
    max_attempts: int = Field(default=5, ge=1)
    default_channels: ChannelNames = [DEFAULT_CHANNEL]
    channels: dict[str, ChannelModel] = {}
    routes: list[RouteModel] = []

    @model_validator(mode="after")
    def _one_name_each(self) -> AlertsFile:
        for short in ("throttle", "retry_backoff"):
            if getattr(self, short) is not None and getattr(self, f"{short}_seconds") is not None:
                raise ValueError(f"give {short} or {short}_seconds, not both")
        return self


def parse_alert_config(raw: Any, source: str) -> AlertConfig:
    """Validate a parsed alerts file (see the module docstring); errors start with ``source``."""
    if raw is None:
        return AlertConfig()
    if not isinstance(raw, Mapping):
        raise AlertConfigError(f"{source}: expected a mapping with {sorted(AlertsFile.model_fields)}")
    _refuse_literal_secrets(raw, source)
    try:
        model = AlertsFile.model_validate(raw)
    except ValidationError as exc:
        raise AlertConfigError(_describe(exc, source)) from None
    channels = {name.strip(): _channel_config(name.strip(), c) for name, c in model.channels.items()}
    channels.setdefault(DEFAULT_CHANNEL, ChannelConfig(DEFAULT_CHANNEL, ChannelType.LOG, {}))
    for i, r in enumerate(model.routes):
        _check_defined(r.channels, f"{source}: routes[{i}]", channels)
    _check_defined(model.default_channels, f"{source}: default_channels", channels)
    routes = tuple(Route(frozenset(Severity[s] for s in r.severities), frozenset(AlertType[t] for t in r.alert_types),
                         tuple(r.components), tuple(r.channels), r.continue_matching) for r in model.routes)
    durations = {f"{k}_seconds": v for k in ("throttle", "retry_backoff")
                 for v in [getattr(model, k) if getattr(model, k) is not None else getattr(model, f"{k}_seconds")]
                 if v is not None}
    return AlertConfig(channels=channels, routes=routes, default_channels=tuple(model.default_channels),
                       max_attempts=model.max_attempts, **durations)


def load_alert_config(path: str | Path) -> AlertConfig:
    """Read an alerts YAML file (format in the module docstring). Environment variables named by
    ``*_env`` need not be set yet: they are read when an alert is sent.

        from pathlib import Path
        Path("alerts.yaml").write_text("throttle: 30m\\n")
        assert load_alert_config("alerts.yaml").throttle_seconds == 1800
    """
    return parse_alert_config(read_yaml(path, "alerts file", AlertConfigError), str(path))


def _refuse_literal_secrets(raw: Mapping[Any, Any], source: str) -> None:
    """A URL or password written into the file is refused by name before validation, so no error
    anywhere can quote it."""
    channels = raw.get("channels")
    if not isinstance(channels, Mapping):
        return
    for name, entry in channels.items():
        if not isinstance(name, str) or not name.strip():
            raise AlertConfigError(f"{source}: channels: channel names must be non-empty strings, got {excerpt(name)}")
        if not isinstance(entry, Mapping):
            continue
        for key in map(str, entry):
            if key in _LITERAL_SECRETS:
                raise AlertConfigError(
                    f"{source}: channels.{name}: '{key}' must not be written in the file; put it in an environment "
                    f"variable and name that variable with '{_LITERAL_SECRETS[key]}'")


def _channel_config(name: str, model: BaseModel) -> ChannelConfig:
    options = model.model_dump(by_alias=True, exclude_none=True, exclude={"type"})
    if isinstance(model, EmailChannelModel):
        options["to"] = tuple(options["to"])
    return ChannelConfig(name, ChannelType(model.type), options)  # type: ignore[attr-defined]


def _check_defined(names: list[str], where: str, defined: Mapping[str, Any]) -> None:
    for name in names:
        if name not in defined:
            raise AlertConfigError(f"{where}: unknown channel {excerpt(name)}; defined channels: {sorted(defined)}")


# -- validation errors, said the way a reader fixes them -------------------------------------------

def _a(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


_KEYS: dict[str, type[BaseModel]] = {ChannelType.LOG.value: LogChannelModel, ChannelType.FILE.value: FileChannelModel,
         ChannelType.EMAIL.value: EmailChannelModel, **{t: UrlChannelModel for t in ("webhook", "slack", "apprise")}}
_EXPECTED = {  # what a field must be, for an error of its type rather than of its value
    "port": "must be a whole number between 1 and 65535", "max_attempts": "must be a whole number >= 1",
    "starttls": "must be true or false", "continue": "must be true or false",
    "severities": "must be a list of names, e.g. [ERROR, CRITICAL]",
    "alert_types": "must be a list of names, e.g. [SLA_BREACH, REGRESSION]",
    "components": 'must be a list of names, e.g. ["scd_*", "fct_yearly_events"]',
    "to": "must be a non-empty list of addresses, e.g. [ops@example.com]",
}
_SAFE_TO_QUOTE = {"port", "max_attempts"}  # never a secret; url_env and the like may hold one by mistake
_NEEDS: dict[tuple[str | None, str | None], str] = {("file", "path"): "a file channel needs path, e.g. artifacts/alerts.jsonl",
          ("email", "host"): "an email channel needs host (a non-empty string)",
          ("email", "from"): "an email channel needs from (a non-empty string)",
          **{(t, "url_env"): f"{_a(t)} {t} channel needs url_env (the environment variable that holds the URL)"
             for t in ("webhook", "slack", "apprise")}}
_COLON = {"throttle", "throttle_seconds", "retry_backoff", "retry_backoff_seconds", "timeout_seconds",
          "default_channels"}
_TYPES = [t.value for t in ChannelType]


def _allowed(model: type[BaseModel]) -> list[str]:
    return sorted(f.alias or name for name, f in model.model_fields.items())


def _where(loc: tuple[Any, ...]) -> tuple[str, str | None, str | None]:
    """(entry, channel type, field) of an error location: ``channels.mail``, ``email``, ``port``."""
    if loc and loc[0] == "channels" and len(loc) >= 2:
        return f"channels.{loc[1]}", (str(loc[2]) if len(loc) >= 3 else None), (str(loc[3]) if len(loc) >= 4 else None)
    if loc and loc[0] == "routes" and len(loc) >= 2:
        return f"routes[{loc[1]}]", None, (str(loc[2]) if len(loc) >= 3 else None)
    return "", None, (str(loc[0]) if loc else None)


def _describe(exc: ValidationError, source: str) -> str:
    errors = exc.errors(include_url=False)
    rank = {"extra_forbidden": 0, "union_tag_not_found": 1, "union_tag_invalid": 1, "missing": 2}
    first = min(errors, key=lambda e: rank.get(e["type"], 3))
    entry, ctype, field = _where(tuple(first["loc"]))
    prefix = f"{source}: {entry}: " if entry else f"{source}: "
    kind, value = first["type"], first.get("input")
    if kind == "extra_forbidden":
        unknown = sorted(str(e["loc"][-1])[:40] for e in errors
                         if e["type"] == "extra_forbidden" and _where(tuple(e["loc"]))[0] == entry)[:5]
        if not entry:
            return f"{source}: unknown top-level key(s) {unknown}; allowed: {_allowed(AlertsFile)}"
        if ctype:
            return f"{prefix}unknown key(s) {unknown} for {_a(ctype)} {ctype} channel; allowed: {_allowed(_KEYS[ctype])}"
        return f"{prefix}unknown key(s) {unknown}; allowed: {_allowed(RouteModel)}"
    if kind == "union_tag_not_found":
        return f"{prefix}missing type; one of {_TYPES}"
    if kind == "union_tag_invalid":
        return f"{prefix}unknown type {excerpt(first.get('ctx', {}).get('tag'))}; one of {_TYPES}"
    if field is None:  # the entry itself, or the whole file
        if kind == "value_error":
            return prefix + str(first["msg"]).removeprefix("Value error, ")
        if entry.startswith("channels."):
            return f"{prefix}expected a mapping such as {{type: log}}, got {type(value).__name__}"
        if entry.startswith("routes["):
            return (f"{prefix}expected a mapping such as {{severities: [ERROR], channels: [log]}}, "
                    f"got {type(value).__name__}")
    needs = kind == "missing" or (field != "url_env" and kind in ("value_error", "string_type"))
    if (ctype, field) in _NEEDS and needs:
        return prefix + _NEEDS[(ctype, field)]
    message = str(first["msg"]).removeprefix("Value error, ")
    if field in _EXPECTED and not message.startswith("unknown"):
        quoted = f", got {excerpt(value)}" if field in _SAFE_TO_QUOTE else ""
        return f"{prefix}{field} {_EXPECTED[field]}{quoted}"
    if kind == "missing":
        return f"{prefix}missing {field}" + (" (the channels matching alerts go to)" if field == "channels" else "")
    if not entry and field in ("channels", "routes"):
        return f"{source}: " + ("channels must be a mapping of name to {type: ..., ...}" if field == "channels"
                                else "routes must be a list")
    if kind != "value_error":
        message = message[:1].lower() + message[1:]
    if field in _COLON or kind != "value_error":
        return f"{prefix}{field}: {message}"
    if field in ("url_env", "username_env", "password_env"):
        return f"{prefix}{field} {message}"
    return prefix + message
