"""SLA rules: which thresholds apply to a component, and what a duration means against them.

Pure decisions, no I/O except reading a YAML file in :func:`load_sla_file`.

A definition applies to a component by name first, then by component type, then the default::

    from planwise_monitoring.evaluation.sla import SlaRules, SlaDefinition

    rules = SlaRules([SlaDefinition(sla_threshold_seconds=120, warning_threshold_seconds=90,
                                    component_name="scd_workforce_state", component_type="SCD")])
    verdict = rules.evaluate("scd_workforce_state", "SCD", duration_seconds=100.0)
    assert verdict.sla_status == "SLA_WARNING"

The configuration (an SLA file's entries, the resource's ``sla_definitions``) is validated by the
pydantic model :class:`SlaEntry`: unknown keys, wrong types and NaN or infinite thresholds are an
:class:`SlaConfigError` naming the file, the entry and the field, quoting at most a short excerpt.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..yaml_files import excerpt, read_yaml

ANY = "*"  # stands for "any component" in mon_sla_definitions, whose columns are NOT NULL


class SlaConfigError(ValueError):
    """An SLA definition or SLA file is malformed; the message names the file, entry and field.

        try:
            parse_sla_config({"definitions": [{"component_name": "scd"}]}, "sla.yaml")
        except SlaConfigError as exc:
            assert str(exc) == "sla.yaml: definitions[0] (component_name='scd'): missing sla_threshold_seconds"
    """


class SlaStatus(str, Enum):
    """A step's duration against its SLA (``mon_multi_year_performance.sla_status``).

        assert sla_status(100.0, warning_threshold=90, breach_threshold=120) is SlaStatus.SLA_WARNING
    """

    WITHIN_SLA = "WITHIN_SLA"
    SLA_WARNING = "SLA_WARNING"
    SLA_BREACH = "SLA_BREACH"


class PerformanceCategory(str, Enum):
    """A finer grade of the same comparison (``performance_category``).

        assert performance_category(50.0, 90, 120) is PerformanceCategory.EXCELLENT
    """

    EXCELLENT = "EXCELLENT"  # at most half the breach threshold
    GOOD = "GOOD"  # at most the warning threshold
    POOR = "POOR"  # past the warning threshold, within the breach threshold
    CRITICAL = "CRITICAL"  # past the breach threshold


@dataclass(frozen=True)
class SlaDefinition:
    """Thresholds for one component (by name), one component type, or the default (neither).

    With ``record_count_threshold > 0`` the thresholds hold up to that many output records and
    scale linearly beyond it, so a year with twice the workforce gets twice the time.
    """

    sla_threshold_seconds: float
    warning_threshold_seconds: float
    component_name: str | None = None
    component_type: str | None = None
    record_count_threshold: int = 0
    is_active: bool = True

    def __post_init__(self) -> None:
        # A NaN threshold would judge every duration WITHIN_SLA (every comparison with NaN is False).
        for name in ("sla_threshold_seconds", "warning_threshold_seconds"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SlaConfigError(f"SlaDefinition: {name} must be a finite number, got {excerpt(value)}")

    def thresholds_for(self, output_records: int | None) -> tuple[float, float]:
        """(warning, breach) thresholds for a step that produced ``output_records`` records."""
        scale = 1.0
        if self.record_count_threshold > 0 and output_records and output_records > self.record_count_threshold:
            scale = output_records / self.record_count_threshold
        return self.warning_threshold_seconds * scale, self.sla_threshold_seconds * scale


@dataclass(frozen=True)
class SlaVerdict:
    """What a step's duration means against the SLA that applies to it."""

    definition: SlaDefinition
    warning_threshold_seconds: float
    sla_threshold_seconds: float
    sla_status: SlaStatus | None
    performance_category: PerformanceCategory | None


# The seed specification's defaults (003, "initialize_monitoring").
DEFAULT_SLA_DEFINITIONS: tuple[SlaDefinition, ...] = (
    SlaDefinition(120, 90, component_name="scd_workforce_state", component_type="SCD"),
    SlaDefinition(300, 240, component_name="fct_yearly_events", component_type="EVENT_GENERATION"),
    SlaDefinition(30, 20, component_name="int_baseline_workforce", component_type="WORKFORCE_PREPARATION"),
    SlaDefinition(1800, 1200, component_name="multi_year_simulation", component_type="FULL_SIMULATION"),
)
DEFAULT_SLA = SlaDefinition(sla_threshold_seconds=300, warning_threshold_seconds=240)


def sla_status(duration_seconds: float, warning_threshold: float, breach_threshold: float) -> SlaStatus:
    if duration_seconds > breach_threshold:
        return SlaStatus.SLA_BREACH
    if duration_seconds > warning_threshold:
        return SlaStatus.SLA_WARNING
    return SlaStatus.WITHIN_SLA


def performance_category(
    duration_seconds: float, warning_threshold: float, breach_threshold: float
) -> PerformanceCategory:
    if duration_seconds > breach_threshold:
        return PerformanceCategory.CRITICAL
    if duration_seconds > warning_threshold:
        return PerformanceCategory.POOR
    if duration_seconds > breach_threshold / 2:
        return PerformanceCategory.GOOD
    return PerformanceCategory.EXCELLENT


class SlaRules:
    """The active SLA definitions and the default, with name → type → default matching."""

    def __init__(self, definitions: Iterable[SlaDefinition] = DEFAULT_SLA_DEFINITIONS,
                 default: SlaDefinition = DEFAULT_SLA):
        self.definitions: tuple[SlaDefinition, ...] = tuple(d for d in definitions if d.is_active)
        self.default = default
        self._by_name = {d.component_name: d for d in self.definitions if d.component_name}
        # A type-only entry wins over a named entry that happens to share the type.
        self._by_type: dict[str, SlaDefinition] = {}
        for d in sorted(self.definitions, key=lambda d: d.component_name is not None):
            if d.component_type:
                self._by_type.setdefault(d.component_type, d)

    def resolve(self, component_name: str, component_type: str) -> SlaDefinition:
        return self._by_name.get(component_name) or self._by_type.get(component_type) or self.default

    def evaluate(self, component_name: str, component_type: str, duration_seconds: float,
                 output_records: int | None = None, succeeded: bool = True) -> SlaVerdict:
        """Judge a duration. A failed step gets a status only once it has certainly missed the SLA:
        a fast failure is not "within SLA", a slow one is a breach either way."""
        definition = self.resolve(component_name, component_type)
        warning, breach = definition.thresholds_for(output_records)
        status: SlaStatus | None = sla_status(duration_seconds, warning, breach)
        category: PerformanceCategory | None = performance_category(duration_seconds, warning, breach)
        if not succeeded and status is not SlaStatus.SLA_BREACH:
            status = category = None
        return SlaVerdict(definition, warning, breach, status, category)

    def table_rows(self) -> list[SlaDefinition]:
        """Every definition including the default, as stored in ``mon_sla_definitions``."""
        return [*self.definitions, self.default]


class SlaEntry(BaseModel):
    """One SLA entry as written in an SLA file or in the resource's ``sla_definitions``: the schema
    of the configuration, strict (no unknown keys, no ``"10"`` for 10, no NaN or infinity).

        entry = SlaEntry.model_validate({"component_name": "scd_workforce_state",
                                         "sla_threshold_seconds": 120, "warning_threshold_seconds": 90})
        assert entry.to_definition() == SlaDefinition(120, 90, component_name="scd_workforce_state")

    :func:`parse_sla_definition` turns its validation errors into an :class:`SlaConfigError` that
    names the file, the entry and the field.
    """

    # strict: YAML's "true"/"10" stay strings and are refused, as the hand-written checks did
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    sla_threshold_seconds: float = Field(gt=0, description="Above this the step breaches its SLA.")
    warning_threshold_seconds: float = Field(gt=0, description="Above this (and within the SLA) it warns.")
    component_name: str | None = Field(default=None, description="The component (asset or dbt model) it applies to.")
    component_type: str | None = Field(default=None, description="The component type it applies to, e.g. SCD.")
    record_count_threshold: int = Field(
        default=0, ge=0, description="Thresholds scale linearly above this many output records (0: never).")
    is_active: bool = Field(default=True, description="An inactive entry is stored but never applies.")

    @field_validator("component_name", "component_type")
    @classmethod
    def _a_name(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or value.strip() == ANY):
            raise ValueError("not a name")
        return value

    @model_validator(mode="after")
    def _warning_before_breach(self) -> SlaEntry:
        if self.warning_threshold_seconds >= self.sla_threshold_seconds:
            raise ValueError(f"warning_threshold_seconds ({self.warning_threshold_seconds:g}) must be less than "
                             f"sla_threshold_seconds ({self.sla_threshold_seconds:g})")
        return self

    def to_definition(self) -> SlaDefinition:
        return SlaDefinition(**self.model_dump())


_FIELDS = list(SlaEntry.model_fields)
# What each field must be, said the way the error messages always said it.
_EXPECTED = {"sla_threshold_seconds": "a positive number", "warning_threshold_seconds": "a positive number",
             "record_count_threshold": "a whole number >= 0", "component_name": "a non-empty name",
             "component_type": "a non-empty name", "is_active": "true or false"}


def _entry_error(exc: ValidationError, label: str) -> SlaConfigError:
    """The first problem of an entry, in the order a reader fixes them: unknown keys, missing keys,
    values, then how the values relate."""
    errors = exc.errors(include_url=False)
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return SlaConfigError(f"{label}: unknown key(s) {[str(k)[:40] for k in unknown[:5]]}; "
                              f"allowed: {sorted(_FIELDS)}")
    missing = [str(e["loc"][0]) for e in errors if e["type"] == "missing"]
    if missing:
        return SlaConfigError(f"{label}: missing {missing[0]}")
    fields = [e for e in errors if e["loc"]]
    if fields:
        error = min(fields, key=lambda e: _FIELDS.index(str(e["loc"][0])))
        field, value = str(error["loc"][0]), error["input"]
        expected = "a finite number" if error["type"] == "finite_number" else _EXPECTED[field]
        return SlaConfigError(f"{label}: {field} must be {expected}, got {excerpt(value)}")
    return SlaConfigError(f"{label}: {str(errors[0]['msg']).removeprefix('Value error, ')}")


def parse_sla_definition(raw: Any, where: str, *, is_default: bool = False) -> SlaDefinition:
    """Validate one mapping into an :class:`SlaDefinition`; errors name ``where`` and the field.

        d = parse_sla_definition({"component_type": "SCD", "sla_threshold_seconds": 60,
                                  "warning_threshold_seconds": 45}, "sla.yaml: definitions[0]")
        assert d == SlaDefinition(60, 45, component_type="SCD")
    """
    if not isinstance(raw, Mapping):
        raise SlaConfigError(f"{where}: expected a mapping of SLA fields, got {type(raw).__name__}")
    label = where
    named = [(k, raw[k]) for k in ("component_name", "component_type") if raw.get(k)]
    if named:
        label += f" ({', '.join(f'{k}={excerpt(v, 40)}' for k, v in named)})"
    try:
        entry = SlaEntry.model_validate(raw)
    except ValidationError as exc:
        raise _entry_error(exc, label) from None
    for key in ("component_name", "component_type"):
        if is_default and getattr(entry, key) is not None:
            raise SlaConfigError(f"{label}: the default applies to every component; remove {key}")
    if not is_default and not (entry.component_name or entry.component_type):
        raise SlaConfigError(f"{label}: needs component_name or component_type (or put it under 'default')")
    return entry.to_definition()


def parse_sla_config(raw: Any, source: str) -> tuple[list[SlaDefinition], SlaDefinition | None]:
    """Parse ``{"default": {...}, "definitions": [...]}`` (or a bare list of definitions); an ``slos:``
    section is allowed beside them and read by :func:`.slo.load_slo_file`."""
    if raw is None:
        return [], None
    if isinstance(raw, list):
        raw = {"definitions": raw}
    if not isinstance(raw, Mapping):
        raise SlaConfigError(f"{source}: expected 'definitions:' (a list) and optionally 'default:'")
    unknown = sorted(set(map(str, raw)) - {"definitions", "default", "slos"})  # slos: see .slo
    if unknown:
        raise SlaConfigError(f"{source}: unknown top-level key(s) {[str(k)[:40] for k in unknown[:5]]}; "
                             "allowed: ['default', 'definitions', 'slos']")
    entries = raw.get("definitions") or []
    if not isinstance(entries, list):
        raise SlaConfigError(f"{source}: 'definitions' must be a list")
    definitions = [parse_sla_definition(e, f"{source}: definitions[{i}]") for i, e in enumerate(entries)]
    check_unique(definitions, source)
    default = None
    if raw.get("default") is not None:
        default = parse_sla_definition(raw["default"], f"{source}: default", is_default=True)
    return definitions, default


def check_unique(definitions: Sequence[SlaDefinition], source: str) -> None:
    seen: dict[tuple[str | None, str | None], int] = {}
    for i, d in enumerate(definitions):
        key = (d.component_name, None if d.component_name else d.component_type)
        if key in seen:
            raise SlaConfigError(
                f"{source}: definitions[{i}] repeats definitions[{seen[key]}] for "
                f"{'component_name=' + excerpt(d.component_name, 40) if d.component_name else 'component_type=' + excerpt(d.component_type, 40)}"
            )
        seen[key] = i


def load_sla_file(path: str | Path) -> tuple[list[SlaDefinition], SlaDefinition | None]:
    """Read an SLA YAML file (format in the README's "SLAs" section)."""
    return parse_sla_config(read_yaml(path, "SLA file", SlaConfigError), str(path))


def merge_definitions(base: Sequence[SlaDefinition], overrides: Sequence[SlaDefinition]) -> list[SlaDefinition]:
    """``overrides`` replace ``base`` entries for the same component name (or the same type-only key)."""
    def key(d: SlaDefinition) -> tuple[str | None, str | None]:
        return (d.component_name, None if d.component_name else d.component_type)

    merged = {key(d): d for d in base}
    merged.update({key(d): d for d in overrides})
    return list(merged.values())
