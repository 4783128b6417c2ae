from __future__ import annotations

import re
from pathlib import Path

import pytest

from planwise_monitoring.evaluation.sla import (
    DEFAULT_SLA,
    PerformanceCategory,
    SlaConfigError,
    SlaDefinition,
    SlaEntry,
    SlaRules,
    SlaStatus,
    load_sla_file,
    merge_definitions,
    parse_sla_config,
    parse_sla_definition,
    performance_category,
    sla_status,
)


@pytest.mark.parametrize(
    "duration, expected",
    [
        (0.0, SlaStatus.WITHIN_SLA),
        (90.0, SlaStatus.WITHIN_SLA),  # at the warning threshold: still within
        (90.01, SlaStatus.SLA_WARNING),  # the seed's code ignored the defined warning threshold
        (120.0, SlaStatus.SLA_WARNING),
        (120.01, SlaStatus.SLA_BREACH),
    ],
)
def test_sla_status_uses_the_defined_warning_threshold(duration, expected):
    assert sla_status(duration, warning_threshold=90, breach_threshold=120) is expected


@pytest.mark.parametrize(
    "duration, expected",
    [
        (10, PerformanceCategory.EXCELLENT),
        (60, PerformanceCategory.EXCELLENT),
        (61, PerformanceCategory.GOOD),
        (90, PerformanceCategory.GOOD),
        (100, PerformanceCategory.POOR),
        (121, PerformanceCategory.CRITICAL),
    ],
)
def test_performance_category(duration, expected):
    assert performance_category(duration, warning_threshold=90, breach_threshold=120) is expected


@pytest.mark.parametrize(
    "name, ctype, expected",
    [
        ("scd_workforce_state", "SCD", (90, 120)),  # by name
        ("scd_workforce_state", "OTHER", (90, 120)),  # name wins over type
        ("scd_other", "SCD", (50, 60)),  # type-only entry beats a named entry of the same type
        ("fct_other_events", "EVENT_GENERATION", (240, 300)),  # a named entry's type applies
        ("unknown", "UNKNOWN", (240, 300)),  # the default
    ],
)
def test_matching_order_name_then_type_then_default(name, ctype, expected):
    rules = SlaRules([
        SlaDefinition(120, 90, component_name="scd_workforce_state", component_type="SCD"),
        SlaDefinition(60, 50, component_type="SCD"),
        SlaDefinition(300, 240, component_name="fct_yearly_events", component_type="EVENT_GENERATION"),
    ])
    verdict = rules.evaluate(name, ctype, 1.0)
    assert (verdict.warning_threshold_seconds, verdict.sla_threshold_seconds) == expected


def test_record_count_threshold_scales_thresholds_above_it():
    rules = SlaRules([SlaDefinition(10, 5, component_name="c", record_count_threshold=1000)])
    assert rules.evaluate("c", "T", 12, output_records=1000).sla_status is SlaStatus.SLA_BREACH
    # twice the records: twice the time allowed
    scaled = rules.evaluate("c", "T", 12, output_records=2000)
    assert (scaled.warning_threshold_seconds, scaled.sla_threshold_seconds) == (10, 20)
    assert scaled.sla_status is SlaStatus.SLA_WARNING


@pytest.mark.parametrize(
    "duration, expected_status",
    [(1.0, None), (130.0, SlaStatus.SLA_BREACH)],
)
def test_failed_step_has_a_status_only_once_it_certainly_missed_the_sla(duration, expected_status):
    verdict = SlaRules().evaluate("scd_workforce_state", "SCD", duration, succeeded=False)
    assert verdict.sla_status is expected_status


def test_inactive_definitions_do_not_apply():
    rules = SlaRules([SlaDefinition(10, 5, component_name="c", is_active=False)])
    assert rules.resolve("c", "T") == DEFAULT_SLA


def test_overrides_replace_by_name_and_keep_the_rest():
    base = [SlaDefinition(120, 90, component_name="a"), SlaDefinition(60, 30, component_type="T")]
    merged = merge_definitions(base, [SlaDefinition(10, 5, component_name="a")])
    assert [(d.component_name, d.sla_threshold_seconds) for d in merged] == [("a", 10), (None, 60)]


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"definitions": [{"component_name": "scd", "sla_threshold_seconds": 10, "warning_threshold_seconds": 10}]},
         "definitions[0] (component_name='scd'): warning_threshold_seconds (10) must be less than"),
        ({"definitions": [{"component_name": "scd", "sla_threshold_seconds": -1, "warning_threshold_seconds": 1}]},
         "sla_threshold_seconds must be a positive number, got -1"),
        ({"definitions": [{"component_name": "scd", "sla_treshold_seconds": 10}]},
         "unknown key(s) ['sla_treshold_seconds']"),
        ({"definitions": [{"sla_threshold_seconds": 10, "warning_threshold_seconds": 5}]},
         "definitions[0]: needs component_name or component_type"),
        ({"definitions": [{"component_name": "a", "sla_threshold_seconds": 10}]},
         "missing warning_threshold_seconds"),
        ({"definitions": [{"component_name": "a", "sla_threshold_seconds": "ten", "warning_threshold_seconds": 1}]},
         "must be a positive number, got 'ten'"),
        ({"definitions": [
            {"component_name": "a", "sla_threshold_seconds": 10, "warning_threshold_seconds": 5},
            {"component_name": "a", "sla_threshold_seconds": 20, "warning_threshold_seconds": 5}]},
         "definitions[1] repeats definitions[0] for component_name='a'"),
        ({"default": {"component_name": "a", "sla_threshold_seconds": 10, "warning_threshold_seconds": 5}},
         "default (component_name='a'): the default applies to every component"),
        ({"slas": []}, "unknown top-level key(s) ['slas']"),
        ({"definitions": {"a": 1}}, "'definitions' must be a list"),
        ({"definitions": ["scd"]}, "definitions[0]: expected a mapping"),
    ],
)
def test_malformed_definitions_name_the_entry(raw, message):
    with pytest.raises(SlaConfigError) as excinfo:
        parse_sla_config(raw, "sla.yaml")
    assert message in str(excinfo.value)


def test_sla_file_round_trip(tmp_path: Path):
    path = tmp_path / "sla.yaml"
    path.write_text(
        "default:\n  sla_threshold_seconds: 600\n  warning_threshold_seconds: 500\n"
        "definitions:\n"
        "  - component_name: scd_workforce_state\n    component_type: SCD\n"
        "    sla_threshold_seconds: 100\n    warning_threshold_seconds: 80\n    record_count_threshold: 5000\n"
    )
    definitions, default = load_sla_file(path)
    assert definitions == [SlaDefinition(100, 80, "scd_workforce_state", "SCD", 5000)]
    assert default == SlaDefinition(600, 500)


def test_invalid_yaml_names_file_and_line(tmp_path: Path):
    path = tmp_path / "sla.yaml"
    path.write_text("definitions:\n  - component_name: a\n    sla_threshold_seconds: [10\n")
    with pytest.raises(SlaConfigError, match=r"sla.yaml is not valid YAML at line \d+"):
        load_sla_file(path)


def test_missing_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(SlaConfigError, match=r"cannot read SLA file .*nope.yaml: No such file"):
        load_sla_file(tmp_path / "nope.yaml")


# -- the configuration model: NaN, strict types, short messages ---------------------------------

THRESHOLDS = {"sla_threshold_seconds": 10, "warning_threshold_seconds": 5}


@pytest.mark.parametrize("field", ["sla_threshold_seconds", "warning_threshold_seconds"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_thresholds_are_refused_in_entries(field, value):
    """NaN passed every check before (NaN <= 0 and NaN >= x are both False) and then judged every
    duration WITHIN_SLA."""
    with pytest.raises(SlaConfigError) as info:
        parse_sla_definition({"component_name": "scd", **THRESHOLDS, field: value}, "sla_definitions[0]")
    assert str(info.value) == f"sla_definitions[0] (component_name='scd'): {field} must be a finite number, got {value!r}"


def test_non_finite_thresholds_are_refused_in_resource_config():
    from pydantic import ValidationError

    from planwise_monitoring import MonitoringResource

    with pytest.raises(ValidationError, match=r"sla_definitions\[0\] \(component_type='SCD'\): "
                                              r"sla_threshold_seconds must be a finite number, got nan"):
        MonitoringResource(sla_definitions=[{"component_type": "SCD", "sla_threshold_seconds": float("nan"),
                                             "warning_threshold_seconds": 5}])


def test_a_definition_built_in_code_refuses_nan_too():
    with pytest.raises(SlaConfigError, match="sla_threshold_seconds must be a finite number, got nan"):
        SlaDefinition(float("nan"), 5, component_name="scd")


@pytest.mark.parametrize("raw, message", [
    ({"component_name": "scd", "sla_threshold_seconds": True, "warning_threshold_seconds": 5},
     "sla_threshold_seconds must be a positive number, got True"),
    ({"component_name": "scd", "sla_threshold_seconds": "10", "warning_threshold_seconds": 5},
     "sla_threshold_seconds must be a positive number, got '10'"),
    ({"component_name": "scd", **THRESHOLDS, "record_count_threshold": 1.5},
     "record_count_threshold must be a whole number >= 0, got 1.5"),
    ({"component_name": "scd", **THRESHOLDS, "is_active": "yes"}, "is_active must be true or false"),
    ({"component_name": " ", **THRESHOLDS}, "component_name must be a non-empty name, got ' '"),
    ({"component_type": "*", **THRESHOLDS}, "component_type must be a non-empty name, got '*'"),
])
def test_strict_types_name_the_field(raw, message):
    with pytest.raises(SlaConfigError, match=re.escape(message)):
        parse_sla_definition(raw, "sla.yaml: definitions[0]")


def test_error_messages_quote_at_most_a_short_excerpt():
    huge = "x" * 1_000_000
    for raw in ({"component_name": huge, "sla_threshold_seconds": huge, "warning_threshold_seconds": 1},
                {"component_name": "a", **THRESHOLDS, huge: 1}):
        with pytest.raises(SlaConfigError) as info:
            parse_sla_definition(raw, "sla.yaml: definitions[0]")
        assert len(str(info.value)) < 400
    with pytest.raises(SlaConfigError) as info:
        parse_sla_config({"definitions": [{"component_name": huge, **THRESHOLDS}] * 2}, "sla.yaml")
    assert "definitions[1] repeats definitions[0]" in str(info.value) and len(str(info.value)) < 200


def test_the_entry_model_is_the_schema():
    schema = SlaEntry.model_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"sla_threshold_seconds", "warning_threshold_seconds"}
    assert SlaEntry.model_validate({"component_type": "SCD", **THRESHOLDS}).to_definition() == SlaDefinition(
        10, 5, component_type="SCD")
