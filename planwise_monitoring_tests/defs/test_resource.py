from pathlib import Path

import pytest
from dagster import AssetExecutionContext, DagsterInvalidConfigError, asset, materialize
from pydantic import ValidationError

from planwise_monitoring import MonitoringResource, SlaDefinitionConfig, monitor_performance


def test_malformed_sla_yaml_fails_when_the_resource_is_built(tmp_path: Path):
    bad = tmp_path / "sla.yaml"
    bad.write_text("definitions:\n  - component_name: scd\n    sla_threshold_seconds: [1\n")
    with pytest.raises(ValidationError, match=r"sla.yaml is not valid YAML at line 4, column 1: expected ',' or '\]'.*"
                                             r"\(while parsing a flow sequence that starts at line 3\)"):
        MonitoringResource(database_path=str(tmp_path / "m.duckdb"), sla_file=str(bad))


def test_an_inconsistent_definition_is_named(tmp_path: Path):
    sla = tmp_path / "sla.yaml"
    sla.write_text("definitions:\n  - component_name: fct_yearly_events\n"
                   "    sla_threshold_seconds: 100\n    warning_threshold_seconds: 150\n")
    with pytest.raises(ValidationError, match=r"definitions\[0\] \(component_name='fct_yearly_events'\): "
                                              r"warning_threshold_seconds \(150\) must be less than"):
        MonitoringResource(sla_file=str(sla))
    with pytest.raises(ValidationError, match=r"sla_definitions\[1\] \(component_type='SCD'\): sla_threshold"):
        MonitoringResource(sla_definitions=[
            SlaDefinitionConfig(component_type="EVENT_GENERATION", sla_threshold_seconds=10, warning_threshold_seconds=5),
            SlaDefinitionConfig(component_type="SCD", sla_threshold_seconds=-1, warning_threshold_seconds=5),
        ])


def test_a_missing_sla_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ValidationError, match=r"cannot read SLA file .*absent.yaml: No such file"):
        MonitoringResource(sla_file=str(tmp_path / "absent.yaml"))


@pytest.mark.parametrize("scenario", ["", " ", "x" * 101])
def test_a_bad_scenario_is_refused(scenario):
    with pytest.raises(ValidationError, match="scenario must be 1-100 characters"):
        MonitoringResource(scenario=scenario)


def test_config_overrides_the_file_which_overrides_the_defaults(tmp_path: Path):
    sla = tmp_path / "sla.yaml"
    sla.write_text(
        "default: {sla_threshold_seconds: 50, warning_threshold_seconds: 40}\n"
        "definitions:\n"
        "  - {component_name: scd_workforce_state, sla_threshold_seconds: 20, warning_threshold_seconds: 10}\n"
        "  - {component_name: fct_yearly_events, sla_threshold_seconds: 20, warning_threshold_seconds: 10}\n"
    )
    rules = MonitoringResource(
        sla_file=str(sla),
        sla_definitions=[SlaDefinitionConfig(component_name="fct_yearly_events",
                                             sla_threshold_seconds=7, warning_threshold_seconds=3)],
    ).get_sla_rules()
    assert rules.resolve("scd_workforce_state", "SCD").sla_threshold_seconds == 20  # file over default
    assert rules.resolve("fct_yearly_events", "EVENT_GENERATION").sla_threshold_seconds == 7  # config over file
    assert rules.resolve("int_baseline_workforce", "X").sla_threshold_seconds == 30  # built-in default kept
    assert rules.resolve("anything", "ELSE").sla_threshold_seconds == 50  # the file's default


def test_the_rules_are_reread_when_the_file_changes(tmp_path: Path):
    sla = tmp_path / "sla.yaml"
    sla.write_text("definitions:\n  - {component_type: T, sla_threshold_seconds: 20, warning_threshold_seconds: 10}\n")
    resource = MonitoringResource(sla_file=str(sla))
    assert resource.get_sla_rules().resolve("c", "T").sla_threshold_seconds == 20
    sla.write_text("definitions:\n  - {component_type: T, sla_threshold_seconds: 99, warning_threshold_seconds: 10}\n")
    import os
    os.utime(sla, ns=(sla.stat().st_atime_ns, sla.stat().st_mtime_ns + 10**9))
    assert resource.get_sla_rules().resolve("c", "T").sla_threshold_seconds == 99


@pytest.mark.parametrize("field", ["databse_path", "databse_url"])
def test_an_unknown_field_fails_naming_it(tmp_path: Path, field: str):
    """The issue: a typo was accepted and the records went to ./monitoring.duckdb."""
    with pytest.raises(ValidationError, match=rf"(?s){field}\n  Extra inputs are not permitted"):
        MonitoringResource(**{field: str(tmp_path / "x.duckdb")})
    with pytest.raises(ValidationError, match=r"(?s)sla_treshold_seconds\n  Extra inputs are not permitted"):
        SlaDefinitionConfig(component_type="SCD", sla_threshold_seconds=9, warning_threshold_seconds=5,
                            sla_treshold_seconds=2)


def test_an_unknown_field_in_run_config_fails_the_launch_naming_it(tmp_path: Path):
    @asset
    @monitor_performance("SCD")
    def scd_workforce_state(context: AssetExecutionContext) -> int:
        return 1

    db = tmp_path / "m.duckdb"
    with pytest.raises(DagsterInvalidConfigError, match=r"(?s)databse_path"):
        materialize([scd_workforce_state], resources={"monitoring": MonitoringResource.configure_at_launch()},
                    run_config={"resources": {"monitoring": {"config": {"databse_path": str(db)}}}})
    assert not db.exists()
    # the same launch with the field spelt right records where it says
    assert materialize([scd_workforce_state], resources={"monitoring": MonitoringResource.configure_at_launch()},
                       run_config={"resources": {"monitoring": {"config": {"database_path": str(db)}}}}).success
    assert MonitoringResource(database_path=str(db)).get_store().read_performance()["component_name"].tolist() \
        == ["scd_workforce_state"]


def test_each_run_has_its_own_event_log_closed_at_the_end(tmp_path: Path):
    """Per-process state belongs to the run's copy of the resource, not to module globals: the
    process's writer (shared by all runs in the process) is not left pointing at a closed log."""
    from dagster import DagsterInstance

    from planwise_monitoring.events import read_events
    from planwise_monitoring.store.writer import writer_for

    @asset
    @monitor_performance("SCD")
    def scd_workforce_state(context: AssetExecutionContext) -> int:
        return 1

    with DagsterInstance.ephemeral() as instance:
        for name in ["a", "b"]:
            monitoring = MonitoringResource(database_path=str(tmp_path / "m.duckdb"),
                                            json_log_path=str(tmp_path / f"{name}.jsonl"))
            assert materialize([scd_workforce_state], instance=instance, resources={"monitoring": monitoring}).success
            assert writer_for(monitoring.get_store()).event_log is None
    for name in ["a", "b"]:
        assert [e["event"] for e in read_events(tmp_path / f"{name}.jsonl")] == ["step_recorded"]


def test_database_url_selects_postgresql_and_database_path_duckdb(tmp_path: Path, postgres_url: str):
    from planwise_monitoring.store.duckdb import DuckDBStore
    from planwise_monitoring.store.postgres import PostgresStore

    assert isinstance(MonitoringResource(database_path=str(tmp_path / "m.duckdb")).get_store(), DuckDBStore)
    store = MonitoringResource(database_url=postgres_url, database_schema="planwise").get_store()
    assert isinstance(store, PostgresStore) and store.schema == "planwise"


def test_database_url_from_an_environment_variable_reaches_the_step(postgres_url: str, monkeypatch):
    from dagster import EnvVar

    monkeypatch.setenv("PLANWISE_TEST_MONITORING_DB_URL", postgres_url)

    @asset
    @monitor_performance("SCD")
    def scd_workforce_state(context: AssetExecutionContext):
        return 1

    resource = MonitoringResource(database_url=EnvVar("PLANWISE_TEST_MONITORING_DB_URL"), database_schema="planwise")
    result = materialize([scd_workforce_state], resources={"monitoring": resource})
    assert result.success
    from planwise_monitoring.store import MonitoringStore

    rows = MonitoringStore(postgres_url, schema="planwise").read_performance()
    assert rows["simulation_run_id"].tolist() == [result.run_id]


@pytest.mark.parametrize(("settings", "message"), [
    ({"database_path": "m.duckdb", "database_url": "postgresql://u@h/d"}, "not both"),
    ({"database_url": " "}, "database_url must not be empty"),
    ({"database_schema": "planwise"}, "database_schema applies to a PostgreSQL database_url only"),
])
def test_conflicting_or_empty_database_settings_are_refused(settings, message):
    with pytest.raises(ValidationError, match=message):
        MonitoringResource(**settings)


def test_a_database_url_that_is_not_postgresql_is_a_clear_error():
    from planwise_monitoring.store import StoreError

    with pytest.raises(StoreError, match="database_url must be a postgresql:// URL"):
        MonitoringResource(database_url="mysql://u@h/d").get_store()
