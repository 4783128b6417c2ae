"""Service level objectives over the monitored steps: attainment, error budget, burn rate, and
multi-window, multi-burn-rate alerting as in Google's SRE workbook (chapter 5), adapted to runs.

Pure decisions, no I/O except reading a YAML file in :func:`load_slo_file`. The SLOs live in
the SLA file's ``slos:`` section, validated like its definitions (unknown keys, wrong types, NaN
are an :class:`SloConfigError` naming the file, the entry and the field)::

    slos:
      - name: yearly-runs-on-time
        components: ["*"]               # component names or shell patterns ("int_*")
        indicator: within_sla           # within_sla | succeeded | under_duration
        objective: 99.0                 # percent of the events that must be good
        window: 28d
      - name: census-under-20s
        components: [stg_census]
        indicator: under_duration
        threshold_seconds: 20
        objective: 95
        window: 7d

Events. Every monitored step attempt of a matching component (a component's run for one
simulation year) that ended within the window is an event of the SLO:

==============  ===================  ===========================================
indicator       events               bad events
==============  ===================  ===========================================
within_sla      steps with a verdict  an SLA breach (a warning is within the SLA,
                                      as in ``mon_sla_compliance``)
succeeded       every step           a failed step
under_duration  succeeded steps      longer than ``threshold_seconds``
==============  ===================  ===========================================

Figures, over the SLO window W ending now, with N events of which B bad::

    attainment        = 100 (N - B) / N
    error budget      = (1 - objective / 100) N       bad events allowed
    budget remaining  = 100 (1 - B / budget) %        negative once overspent
    burn rate over w  = (B_w / budget) / (w / W)      budget spent in w, per w's share of W

With events spread evenly in time the burn rate is the workbook's ``(B_w / N_w) / (1 - objective)``
exactly. Pipelines run in bursts, though: a quiet hour holding three runs, one of them bad, would
burn at 33x by the request formula and page for one run in a month. By the budget spent it burns
at what that one run costs the month, and at burn rate r the budget lasts W / r. That is the
adaptation to runs. Each alert rule judges a long and a short window together (the short one
1/12 of the long: the alert stops soon after the burning does); the defaults are the workbook's:

=========  =========  =======  ======  ==========================
level      burn rate  long     short   budget spent in the long window (30 d)
=========  =========  =======  ======  ==========================
page       14.4       1 h      5 min   2 %
page       6          6 h      30 min  5 %
ticket     3          1 d      2 h     10 %
ticket     1          3 d      6 h     10 %
=========  =========  =======  ======  ==========================

    slo = parse_slo_config([{"name": "on-time", "indicator": "within_sla", "objective": 99,
                             "window": "28d"}], "sla.yaml")[0]
    status = slo_status(slo, SloCounts(events=1000, bad=4, bad_in={3600.0: 3, 300.0: 1}))
    assert status.budget_remaining_pct == 60.0 and status.level is AlertLevel.PAGE
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from ..alerting.policy import Alert, AlertType, Severity
from ..yaml_files import duration_seconds, excerpt, read_yaml

if TYPE_CHECKING:
    from datetime import datetime

    from ..store import StoreSession

ALL = "*"


class SloConfigError(ValueError):
    """An SLO entry or the ``slos:`` section is malformed; the message names the file, entry and field.

        try:
            parse_slo_config([{"name": "x", "indicator": "fast", "objective": 99, "window": "28d"}], "sla.yaml")
        except SloConfigError as exc:
            assert str(exc).startswith("sla.yaml: slos[0] (name='x'): indicator must be one of")
    """


class Indicator(str, Enum):
    WITHIN_SLA = "within_sla"
    SUCCEEDED = "succeeded"
    UNDER_DURATION = "under_duration"


class AlertLevel(str, Enum):
    """How loud an SLO's burning is: NONE, a TICKET (a slow burn: look at it this week) or a PAGE
    (a fast burn: the budget is going in hours)."""

    NONE = "NONE"
    TICKET = "TICKET"
    PAGE = "PAGE"

    @property
    def rank(self) -> int:
        return list(AlertLevel).index(self)


Seconds = Annotated[float, BeforeValidator(lambda v: duration_seconds(v, allow_zero=False))]


class BurnRule(BaseModel):
    """One multi-window rule: alert at ``level`` when the burn rate is at least ``burn_rate`` over
    both the ``long`` and the ``short`` window (durations, e.g. ``1h`` and ``5m``)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    level: Literal["page", "ticket"]
    burn_rate: float = Field(gt=0)
    long: Seconds
    short: Seconds

    @model_validator(mode="after")
    def _short_within_long(self) -> BurnRule:
        if self.short >= self.long:
            raise ValueError(f"short ({self.short:g}s) must be shorter than long ({self.long:g}s)")
        return self

    @property
    def alert_level(self) -> AlertLevel:
        return AlertLevel.PAGE if self.level == "page" else AlertLevel.TICKET


DEFAULT_BURN_RULES = (
    BurnRule(level="page", burn_rate=14.4, long=3600.0, short=300.0),
    BurnRule(level="page", burn_rate=6.0, long=6 * 3600.0, short=1800.0),
    BurnRule(level="ticket", burn_rate=3.0, long=86400.0, short=7200.0),
    BurnRule(level="ticket", burn_rate=1.0, long=3 * 86400.0, short=6 * 3600.0),
)


class Slo(BaseModel):
    """One SLO as written in the ``slos:`` section; see the module docstring."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                      description="Unique; letters, digits, '-', '_' and '.'.")
    indicator: Indicator
    objective: float = Field(gt=0, lt=100, description="Percent of the events that must be good, e.g. 99.0.")
    window: Seconds = Field(description="The rolling window, e.g. 28d.")
    components: tuple[str, ...] = Field(default=(ALL,), min_length=1,
                                        description="Component names or patterns ('*' any characters, '?' one); "
                                                    "'*' alone is every component.")
    scenarios: tuple[str, ...] | None = Field(default=None, description="Only these scenarios (default: all).")
    threshold_seconds: float | None = Field(default=None, gt=0, description="under_duration: the limit.")
    burn_alerts: tuple[BurnRule, ...] = Field(default=DEFAULT_BURN_RULES, description="The alert rules.")
    description: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Slo:
        if (self.indicator is Indicator.UNDER_DURATION) != (self.threshold_seconds is not None):
            raise ValueError("threshold_seconds is needed by indicator under_duration, and only by it")
        for i, rule in enumerate(self.burn_alerts):
            if rule.long > self.window:
                raise ValueError(f"burn_alerts[{i}].long ({rule.long:g}s) is longer than the window "
                                 f"({self.window:g}s)")
        if any(not c.strip() or "[" in c or "]" in c for c in self.components):
            raise ValueError("components must be names or patterns (wildcards: * and ?), not blank")
        return self

    @property
    def windows(self) -> list[float]:
        """Every alert window, in seconds, longest first (each one's bad events are counted)."""
        return sorted({w for rule in self.burn_alerts for w in (rule.long, rule.short)}, reverse=True)

    @property
    def error_budget(self) -> float:
        """The share of events allowed to be bad (0.01 for 99 %)."""
        return 1 - self.objective / 100


@dataclass(frozen=True)
class SloCounts:
    """What the store counted for one SLO: events and bad events in its window, and the bad events
    in each alert window (seconds -> count)."""

    events: int
    bad: int
    bad_in: Mapping[float, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SloStatus:
    """One SLO evaluated. ``burn_rates``: alert window (seconds) -> burn rate; ``firing``: the
    rules whose two windows both burn at their rate; ``level``: the loudest of them."""

    slo: Slo
    events: int
    bad: int
    attainment_pct: float | None  # None without events
    budget_remaining_pct: float  # 100 without events; negative once overspent
    burn_rates: Mapping[float, float]
    firing: tuple[BurnRule, ...]

    @property
    def level(self) -> AlertLevel:
        return max((r.alert_level for r in self.firing), key=lambda level: level.rank, default=AlertLevel.NONE)

    @property
    def met(self) -> bool:
        return self.attainment_pct is None or self.attainment_pct >= self.slo.objective

    def summary(self) -> str:
        """One line for people: attainment against the objective, budget left, the loudest burn."""
        if not self.events:
            return f"{self.slo.name}: no events in {span(self.slo.window)}"
        text = (f"{self.slo.name}: {self.attainment_pct:.2f}% of {self.events} {self.slo.indicator.value} events "
                f"good in {span(self.slo.window)} (objective {self.slo.objective:g}%), "
                f"{self.budget_remaining_pct:.1f}% of the error budget left")
        if self.firing:
            rule = max(self.firing, key=lambda r: (r.alert_level.rank, r.burn_rate))
            text += (f"; {rule.level}: burning at {self.burn_rates[rule.long]:.1f}x over {span(rule.long)} and "
                     f"{self.burn_rates[rule.short]:.1f}x over {span(rule.short)} (rule: {rule.burn_rate:g}x)")
        return text


def span(seconds: float) -> str:
    """A window for people: ``span(3600) == "1 h"``, ``span(300) == "5 min"``."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def slo_status(slo: Slo, counts: SloCounts) -> SloStatus:
    """The SLO's figures and firing rules from its counts (see the module docstring)."""
    if counts.events <= 0:
        return SloStatus(slo, 0, 0, None, 100.0, {w: 0.0 for w in slo.windows}, ())
    budget = slo.error_budget * counts.events  # bad events the window allows

    def burn(window: float) -> float:
        return (counts.bad_in.get(window, 0) / budget) / (window / slo.window)

    rates = {w: burn(w) for w in slo.windows}
    firing = tuple(r for r in slo.burn_alerts if rates[r.long] >= r.burn_rate and rates[r.short] >= r.burn_rate)
    return SloStatus(slo, counts.events, counts.bad, 100 * (counts.events - counts.bad) / counts.events,
                     100 * (1 - counts.bad / budget), rates, firing)


def evaluate_slos(session: StoreSession, slos: Sequence[Slo], now: datetime) -> list[SloStatus]:
    """Every SLO judged over the windows ending at ``now`` (naive UTC), in one scan of the steps."""
    counts = session.slo_counts(slos, now)
    return [slo_status(slo, SloCounts(*counts[slo.name])) for slo in slos]


_ALERT = {AlertLevel.PAGE: (AlertType.SLO_FAST_BURN, Severity.CRITICAL),
          AlertLevel.TICKET: (AlertType.SLO_SLOW_BURN, Severity.WARNING)}


def burn_alerts(statuses: Sequence[SloStatus], previous: Mapping[str, str]) -> tuple[list[Alert], dict[str, str]]:
    """The alerts of SLOs whose level rose since ``previous`` (SLO name -> level name, as the
    sensor's cursor keeps it), and the levels now. An SLO that stays at its level is not alerted
    again; one whose burning stopped (level NONE) is alerted again when it starts anew."""
    alerts, levels = [], {}
    for status in statuses:
        level, name = status.level, status.slo.name
        levels[name] = level.value
        was = AlertLevel(previous.get(name, AlertLevel.NONE.value))
        if level is AlertLevel.NONE or level.rank <= was.rank:
            continue
        alert_type, severity = _ALERT[level]
        alerts.append(Alert(
            alert_type=alert_type, severity=severity, component_name=name, simulation_year=None,
            scenario=",".join(status.slo.scenarios) if status.slo.scenarios else ALL,
            title=f"SLO {name}: {'fast' if level is AlertLevel.PAGE else 'slow'} burn of the error budget "
                  f"({status.budget_remaining_pct:.1f}% left)",
            message=status.summary(),
            details=(("slo", name), ("level", level.value), ("attainment_pct", status.attainment_pct),
                     ("budget_remaining_pct", round(status.budget_remaining_pct, 4)),
                     ("events", status.events), ("bad_events", status.bad),
                     *((f"burn_rate_{span(w).replace(' ', '')}", round(r, 4))
                       for w, r in status.burn_rates.items())),
        ))
    return alerts, levels


# -- configuration -----------------------------------------------------------------------------
_FIELDS = list(Slo.model_fields)


def _entry_error(exc: ValidationError, label: str) -> SloConfigError:
    errors = exc.errors(include_url=False)
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden" and len(e["loc"]) == 1)
    if unknown:
        return SloConfigError(f"{label}: unknown key(s) {[k[:40] for k in unknown[:5]]}; allowed: {sorted(_FIELDS)}")
    missing = [str(e["loc"][0]) for e in errors if e["type"] == "missing" and len(e["loc"]) == 1]
    if missing:
        return SloConfigError(f"{label}: missing {missing[0]}")
    located = [e for e in errors if e["loc"]]
    if located:
        error = min(located, key=lambda e: _FIELDS.index(str(e["loc"][0])) if e["loc"][0] in _FIELDS else 99)
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])[1:]
        if error["loc"] == ("indicator",):
            return SloConfigError(f"{label}: indicator must be one of {[i.value for i in Indicator]}, "
                                  f"got {excerpt(error['input'])}")
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] != "value_error":  # our own validators' messages say what they got
            message += f", got {excerpt(error['input'])}"
        return SloConfigError(f"{label}: {where}: {message}")
    return SloConfigError(f"{label}: {str(errors[0]['msg']).removeprefix('Value error, ')}")


def parse_slo(raw: Any, where: str) -> Slo:
    """Validate one mapping into an :class:`Slo`; errors name ``where`` and the field."""
    if not isinstance(raw, Mapping):
        raise SloConfigError(f"{where}: expected a mapping of SLO fields, got {type(raw).__name__}")
    label = f"{where} (name={excerpt(raw['name'], 40)})" if raw.get("name") else where
    data = dict(raw)
    for key in ("components", "scenarios", "burn_alerts"):  # YAML lists; the model keeps tuples
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
    if isinstance(data.get("indicator"), str):
        data["indicator"] = _indicator(data["indicator"])
    if isinstance(data.get("objective"), int) and not isinstance(data["objective"], bool):
        data["objective"] = float(data["objective"])
    if isinstance(data.get("burn_alerts"), tuple):
        data["burn_alerts"] = tuple(_rule(r) for r in data["burn_alerts"])
    try:
        return Slo.model_validate(data)
    except ValidationError as exc:
        raise _entry_error(exc, label) from None


def _indicator(value: str) -> Indicator | str:
    try:
        return Indicator(value)
    except ValueError:
        return value  # refused by the model, with the allowed values


def _rule(raw: Any) -> Any:
    if isinstance(raw, Mapping) and isinstance(raw.get("burn_rate"), int) and not isinstance(raw["burn_rate"], bool):
        return {**raw, "burn_rate": float(raw["burn_rate"])}
    return raw


def parse_slo_config(raw: Any, source: str) -> list[Slo]:
    """The SLOs of an ``slos:`` section (a list of mappings); names must be unique."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SloConfigError(f"{source}: 'slos' must be a list of SLOs")
    slos = [parse_slo(entry, f"{source}: slos[{i}]") for i, entry in enumerate(raw)]
    seen: dict[str, int] = {}
    for i, slo in enumerate(slos):
        if slo.name in seen:
            raise SloConfigError(f"{source}: slos[{i}] repeats the name {slo.name!r} of slos[{seen[slo.name]}]")
        seen[slo.name] = i
    return slos


def load_slo_file(path: str | Path) -> list[Slo]:
    """The ``slos:`` section of an SLA YAML file (empty when it has none)."""
    raw = read_yaml(path, "SLA file", SloConfigError)
    return parse_slo_config(raw.get("slos") if isinstance(raw, Mapping) else None, str(path))

