"""The demo simulation: real dbt builds of dbt_project/ through Dagster, monitored."""

import importlib
import os

import duckdb
import pytest
from dagster import AssetRecordsFilter, DagsterInstance, build_sensor_context

from planwise_monitoring.defs.dbt import model_timings

MODELS = {
    "stg_census", "int_baseline_workforce", "int_termination_events", "int_hire_events",
    "int_promotion_events", "int_merit_events", "fct_yearly_events", "fct_workforce_snapshot",
    "scd_workforce_state",
}
CENSUS_SIZE = 1000


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo's definitions, pointed at databases of this test module."""
    tmp = tmp_path_factory.mktemp("demo")
    saved = {k: os.environ.get(k) for k in ("PLANWISE_SIM_DB", "PLANWISE_MONITORING_DB")}
    # a file name unlike the one dbt parsed against: DuckDB names the catalog after the file
    os.environ["PLANWISE_SIM_DB"] = str(tmp / "sim-under-test.duckdb")
    os.environ["PLANWISE_MONITORING_DB"] = str(tmp / "monitoring.duckdb")
    import planwise_monitoring.demo.definitions as definitions

    yield importlib.reload(definitions)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def simulate(demo, instance, year: str):
    job = demo.defs.resolve_job_def("workforce_simulation_job")
    return job.execute_in_process(
        partition_key=year, instance=instance, raise_on_error=False,
        run_config={"ops": {"workforce_simulation": {"config": {"census_size": CENSUS_SIZE}}}},
    )


def performance(demo):
    assert demo.monitoring.flush()
    return demo.monitoring.get_store().read_performance()


def count(demo, sql: str, *params) -> int:
    with duckdb.connect(str(demo.SIMULATION_DB), read_only=True) as conn:
        return conn.execute(sql, list(params)).fetchone()[0]


def rows_built(demo, year: int) -> dict[str, int]:
    """What each model holds for the year, counted right after the year's build (some tables
    keep only the latest year)."""
    counts = {}
    for table in MODELS:
        has_year = count(demo, "SELECT count(*) FROM information_schema.columns "
                               "WHERE table_name = ? AND column_name = 'simulation_year'", table)
        counts[table] = (count(demo, f"SELECT count(*) FROM {table} WHERE simulation_year = ?", year)
                         if has_year else count(demo, f"SELECT count(*) FROM {table}"))
    return counts


@pytest.fixture(scope="module")
def two_years(demo, instance):
    results, counts = {}, {}
    for year in ("2025", "2026"):
        results[year] = simulate(demo, instance, year)
        assert results[year].success
        counts[int(year)] = rows_built(demo, int(year))
    return results, counts


def test_every_model_is_a_component_with_dbts_timing_and_its_row_count(demo, two_years):
    _, counts = two_years
    df = performance(demo)
    models = df[df.component_name != "multi_year_simulation"]
    assert models.groupby("simulation_year")["component_name"].apply(set).to_dict() == {2025: MODELS, 2026: MODELS}
    assert (models["execution_time_seconds"] > 0).all()
    assert set(models["status"]) == {"SUCCESS"}
    for row in models.itertuples():
        assert row.output_record_count == counts[row.simulation_year][row.component_name], row.component_name
        assert row.output_record_count > 0
    types = models.drop_duplicates("component_name").set_index("component_name")["component_type"]
    assert types["scd_workforce_state"] == "SCD"
    assert types["fct_yearly_events"] == "EVENT_GENERATION"
    assert types["int_baseline_workforce"] == "WORKFORCE_PREPARATION"
    # each model's SLA comes from its own name or type (demo/sla.yaml over the built-in defaults)
    assert models.set_index("component_name").loc["int_baseline_workforce", "sla_threshold_seconds"].tolist() == [30, 30]


def test_the_year_total_is_the_invocation(demo, two_years):
    df = performance(demo)
    totals = df[df.component_name == "multi_year_simulation"].set_index("simulation_year")
    assert sorted(totals.index) == [2025, 2026]
    assert set(totals["component_type"]) == {"FULL_SIMULATION"}
    models = df[df.component_name != "multi_year_simulation"]
    for year, total in totals.iterrows():
        of_year = models[models.simulation_year == year]
        # the invocation includes dbt's start-up and tests, so it outlasts its models
        assert total["execution_time_seconds"] > of_year["execution_time_seconds"].sum()
        assert total["output_record_count"] == of_year["output_record_count"].sum()
        # models share the invocation's peak memory and split its CPU time
        assert (of_year["memory_usage_mb"] == total["memory_usage_mb"]).all()
        assert of_year["cpu_seconds"].sum() == pytest.approx(total["cpu_seconds"])
        assert total["simulation_run_id"] == two_years[0][str(year)].run_id


def test_dbt_tests_pass_as_asset_checks_and_models_carry_metadata(two_years):
    for result in two_years[0].values():
        checks = result.get_asset_check_evaluations()
        assert len(checks) > 20
        assert all(c.passed for c in checks), [c.check_name for c in checks if not c.passed]
        materializations = result.asset_materializations_for_node("workforce_simulation")
        assert {m.asset_key.path[-1] for m in materializations} == MODELS
        for m in materializations:
            assert m.metadata["planwise/sla_status"].value == "WITHIN_SLA"
            assert m.metadata["dagster/row_count"].value > 0
            assert m.metadata["planwise/step_duration_seconds"].value > m.metadata["planwise/duration_seconds"].value


def test_rerunning_a_year_replaces_its_output_and_keeps_both_records(demo, instance, two_years):
    events_2026 = count(demo, "SELECT count(*) FROM fct_yearly_events WHERE simulation_year = 2026")
    assert simulate(demo, instance, "2026").success
    assert count(demo, "SELECT count(*) FROM fct_yearly_events WHERE simulation_year = 2026") == events_2026
    assert count(demo, "SELECT count(DISTINCT event_id) FROM fct_yearly_events") == count(
        demo, "SELECT count(*) FROM fct_yearly_events")
    df = performance(demo)
    assert (df[df.simulation_year == 2026].groupby("component_name").size() == 2).all()
    assert (df[df.simulation_year == 2025].groupby("component_name").size() == 1).all()


def test_a_missing_year_fails_naming_it(demo, instance, two_years):
    result = simulate(demo, instance, "2028")  # 2027 was never simulated
    assert not result.success
    [failure] = result.get_step_failure_events()
    assert "Simulation year 2028 needs year 2027's workforce snapshot" in failure.event_specific_data.error.message
    df = performance(demo)
    failed = df[(df.simulation_year == 2028) & (df.status == "FAILED")].set_index("component_name")
    assert "int_baseline_workforce" in failed.index and "multi_year_simulation" in failed.index
    assert "2027" in failed.loc["int_baseline_workforce", "error_message"]
    assert failed.loc["int_baseline_workforce", "error_class"] == "dbt.error"


@pytest.mark.parametrize(
    "status, meta, expected",
    [
        ("success", {"component_type": "SCD"}, ("SCD", "SUCCESS", 7)),
        ("error", {}, ("DBT_MODEL", "FAILED", None)),
        ("skipped", {}, None),
    ],
)
def test_model_timings_from_run_results(status, meta, expected):
    manifest = {"nodes": {
        "model.p.m": {"name": "m", "resource_type": "model", "config": {"meta": meta}},
        "test.p.t": {"name": "t", "resource_type": "test", "config": {}},
    }}
    run_results = {"results": [
        {"unique_id": "model.p.m", "status": status, "execution_time": 1.5, "message": "boom",
         "timing": [{"name": "compile", "started_at": "2026-01-01T00:00:00.5Z", "completed_at": "x"}]},
        {"unique_id": "test.p.t", "status": "pass", "execution_time": 0.1, "timing": []},
    ]}
    timings = model_timings(run_results, manifest, row_counts={"model.p.m": 7}, output_names={"model.p.m": "out_m"})
    if expected is None:
        assert timings == []
        return
    [t] = timings
    assert (t.component_type, t.status, t.output_records) == expected
    assert (t.component_name, t.duration_seconds, t.output_name) == ("m", 1.5, "out_m")
    assert t.started_at.isoformat() == "2026-01-01T00:00:00.500000"
    assert (t.error_message == "boom") == (status == "error")


def test_monitoring_assets_after_the_demo_runs(demo, instance, two_years):
    """After the demo's runs above (two years, a re-run, a failed year), the monitoring assets
    agree with a hand computation on the same rows."""
    from ..reporting.test_assets import check_reports_against_hand_computation

    job = demo.defs.resolve_job_def("planwise_monitoring_daily_job")
    assert job.execute_in_process(instance=instance).success
    check_reports_against_hand_computation(demo.monitoring.get_store())


def test_seeds_and_snapshots_are_components_too():
    manifest = {"nodes": {
        "seed.p.departments": {"name": "departments", "resource_type": "seed"},
        "snapshot.p.people": {"name": "people", "resource_type": "snapshot",
                              "config": {"meta": {"component_type": "SCD"}}},
        "model.p.m": {"name": "m", "resource_type": "model"},
        "test.p.t": {"name": "t", "resource_type": "test"},
    }}
    run_results = {"results": [{"unique_id": uid, "status": "pass" if uid.startswith("test") else "success",
                                "execution_time": 0.5} for uid in manifest["nodes"]]}
    timings = model_timings(run_results, manifest, default_component_type="EVENT_GENERATION")
    assert [(t.component_name, t.component_type) for t in timings] == [
        ("departments", "DBT_SEED"), ("people", "SCD"), ("m", "EVENT_GENERATION")]


def test_the_sensor_judges_every_materialization_of_the_demo(demo, instance, two_years):
    """After the demo's runs above (two years, a re-run, a failed year): each materialization of
    a dbt node is judged, against the record its own metadata names."""
    materializations = [
        record
        for key in demo.workforce_simulation.keys
        for record in instance.fetch_materializations(AssetRecordsFilter(asset_key=key), limit=1000).records
    ]
    assert len(materializations) >= 3 * len(MODELS)  # 2025, 2026 and the re-run of 2026
    sensor = demo.defs.get_sensor_def("planwise_performance_sensor")
    with build_sensor_context(instance=instance, resources={"monitoring": demo.monitoring}) as context:
        data = sensor.evaluate_tick(context)
    sla = {e.metadata["materialization_storage_id"].value: e for e in data.asset_events if e.check_name == "sla"}
    regression = {e.metadata["materialization_storage_id"].value for e in data.asset_events
                  if e.check_name == "regression"}
    unlabelled = [m.asset_key.to_user_string() for m in materializations
                  if "planwise/performance_id" not in m.asset_materialization.metadata]
    assert not unlabelled, f"materializations without planwise/* metadata, which no check can judge: {unlabelled}"
    assert set(sla) == regression == {m.storage_id for m in materializations}
    for m in materializations:
        assert sla[m.storage_id].asset_key == m.asset_key
        assert (sla[m.storage_id].metadata["performance_id"].value
                == m.asset_materialization.metadata["planwise/performance_id"].value)


def test_the_calibration_finds_the_hire_rate_the_simulation_then_hits(demo, instance, two_years):
    """Kept last: it re-runs 2025 with the calibrated rate (the dbt test holds the start year to the target)."""
    calibration = demo.defs.resolve_job_def("hire_rate_calibration_job").execute_in_process(
        instance=instance, run_config={"ops": {"hire_rate_calibration": {"config": {"census_size": CENSUS_SIZE}}}})
    [event] = calibration.get_asset_materialization_events()
    hire_rate = event.materialization.metadata["planwise/hire_rate"].value
    store = demo.monitoring.get_store()
    assert demo.monitoring.flush()
    [run] = store.read_table("mon_optimization_runs").to_dict("records")
    assert run["converged"] and run["dagster_run_id"] == calibration.run_id
    assert len(store.read_table("mon_optimization_iterations")) > 5
    [change] = store.read_table("mon_parameter_changes").to_dict("records")
    assert (change["parameter_name"], change["change_source"]) == ("hire_rate", "optimization")
    assert round(change["new_value"], 6) == hire_rate and store.verify_audit().ok
    result = demo.defs.resolve_job_def("workforce_simulation_job").execute_in_process(
        partition_key="2025", instance=instance, raise_on_error=False,
        run_config={"ops": {"workforce_simulation": {"config": {"census_size": CENSUS_SIZE, "hire_rate": hire_rate}}}})
    assert result.success  # including assert_headcount_grows_at_target_rate, now met by the hire rate
    hires = count(demo, "SELECT count(*) FROM int_hire_events WHERE simulation_year = 2025")
    assert hires == round(CENSUS_SIZE * hire_rate)
