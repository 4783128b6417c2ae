"""Dagster definitions of the demo: ``dbt_project/`` as partitioned, monitored dbt assets.

Paths come from the environment, with defaults inside the repository:
``PLANWISE_DBT_PROJECT_DIR`` (``dbt_project/``), ``PLANWISE_SIM_DB`` (the simulation's DuckDB
file, ``dbt_project/simulation.duckdb``) and ``PLANWISE_MONITORING_DB`` (``monitoring.duckdb``).
"""

import json
import os
import shutil
import sys
from pathlib import Path

import duckdb
from dagster import (
    AssetExecutionContext,
    Config,
    Definitions,
    MaterializeResult,
    StaticPartitionsDefinition,
    asset,
    define_asset_job,
)
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets
from pydantic import Field

from planwise_monitoring import (
    MonitoringResource,
    build_monitoring_assets,
    build_monitoring_checks,
    build_monitoring_schedule,
    build_optimization_sensor,
    build_performance_sensor,
    build_run_failure_sensor,
    build_run_summary_sensor,
    monitor_performance,
    monitored_dbt_build,
    run_summaries_spec,
)

REPO = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = Path(os.environ.get("PLANWISE_DBT_PROJECT_DIR", REPO / "dbt_project")).resolve()
SIMULATION_DB = Path(os.environ.get("PLANWISE_SIM_DB", DBT_PROJECT_DIR / "simulation.duckdb")).resolve()
MONITORING_DB = Path(os.environ.get("PLANWISE_MONITORING_DB", REPO / "monitoring.duckdb")).resolve()
# dbt's profile reads PLANWISE_SIM_DB; make it the same absolute path for the dbt subprocess.
os.environ["PLANWISE_SIM_DB"] = str(SIMULATION_DB)

SIMULATION_YEARS = [str(year) for year in range(2025, 2030)]
simulation_years = StaticPartitionsDefinition(SIMULATION_YEARS)

simulation_project = DbtProject(project_dir=DBT_PROJECT_DIR)


def _manifest_is_stale(project: DbtProject) -> bool:
    manifest = project.manifest_path
    if not manifest.exists():
        return True
    sources = [project.project_dir / "dbt_project.yml",
               *(p for d in ("models", "macros", "tests") for p in (project.project_dir / d).rglob("*"))]
    return any(p.stat().st_mtime > manifest.stat().st_mtime for p in sources if p.is_file())


# The dbt beside this Python (the virtualenv's), even when the virtualenv is not activated.
DBT_EXECUTABLE = shutil.which("dbt", path=str(Path(sys.executable).parent)) or shutil.which("dbt") or "dbt"
dbt_resource = DbtCliResource(project_dir=simulation_project, dbt_executable=DBT_EXECUTABLE)
if _manifest_is_stale(simulation_project):
    dbt_resource.cli(["parse", "--quiet"], target_path=simulation_project.target_path).wait()


class SimulationConfig(Config):
    """Simulation knobs, passed to dbt as vars. Keep them the same for every year of a run."""

    census_size: int = Field(default=10_000, description="Employees in the starting census.")
    random_seed: int = Field(default=42, description="Seed of every pseudo-random draw.")
    target_growth_rate: float = Field(default=0.03, description="Yearly headcount growth.")
    hire_rate: float | None = Field(default=None, description="Hires as a share of the headcount (the "
                                    "calibration's); unset: hire whatever hits target_growth_rate.")


class CalibrationConfig(Config):
    """What the calibration aims at; census and seed as the simulation's."""

    census_size: int = Field(default=10_000, description="Employees in the starting census.")
    random_seed: int = Field(default=42, description="Seed of every pseudo-random draw.")
    target_growth_rate: float = Field(default=0.03, description="Yearly headcount growth to hit.")
    initial_hire_rate: float = Field(default=0.10, description="Where the optimizer starts.")


class SimulationTranslator(DagsterDbtTranslator):
    """Groups the models and shows each model's component type in the asset's metadata."""

    def get_group_name(self, dbt_resource_props):
        return "workforce_simulation"

    def get_metadata(self, dbt_resource_props):
        meta = {**(dbt_resource_props.get("config", {}).get("meta") or {}), **(dbt_resource_props.get("meta") or {})}
        component_type = meta.get("component_type")
        return {"planwise/component_type": component_type} if component_type else {}


@dbt_assets(
    manifest=simulation_project.manifest_path,
    partitions_def=simulation_years,
    dagster_dbt_translator=SimulationTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)),
    pool="planwise_simulation",  # one dbt build at a time: they share one DuckDB file
)
@monitor_performance("FULL_SIMULATION", component_name="multi_year_simulation")
def workforce_simulation(context: AssetExecutionContext, dbt: DbtCliResource, monitoring: MonitoringResource,
                         config: SimulationConfig):
    """One simulation year: ``dbt build`` of every model for the partition's year."""
    year = int(context.partition_key)
    dbt_vars = {"simulation_year": year, "census_size": config.census_size,
                "random_seed": config.random_seed, "target_growth_rate": config.target_growth_rate}
    if config.hire_rate is not None:
        dbt_vars["hire_rate"] = config.hire_rate
    yield from monitored_dbt_build(context, dbt, monitoring, database_path=str(SIMULATION_DB), dbt_vars=dbt_vars)


@asset(group_name="workforce_simulation", pool="planwise_simulation", kinds={"scipy", "dbt"})
@monitor_performance("CALIBRATION")
def hire_rate_calibration(context: AssetExecutionContext, dbt: DbtCliResource, monitoring: MonitoringResource,
                          config: CalibrationConfig) -> MaterializeResult:
    """Finds the hire rate that makes the simulation's first year grow at ``target_growth_rate``.

    dbt builds the first year's census and terminations (the real models, with the same seed);
    each evaluation of the optimizer is then the simulation's headcount equation for that year,
    ``growth = (headcount * hire_rate - terminations) / headcount`` (the model rounds the hires), so
    the rate found is the one the dbt model hits when it runs with it. Tracked by the monitoring: every
    iteration, the run, and the changed parameter in the audit trail."""
    start_year = int(SIMULATION_YEARS[0])
    dbt_vars = {"simulation_year": start_year, "census_size": config.census_size, "random_seed": config.random_seed}
    dbt.cli(["run", "--select", "stg_census int_baseline_workforce int_termination_events",
             "--vars", json.dumps(dbt_vars)], raise_on_error=True).wait()
    with duckdb.connect(str(SIMULATION_DB), read_only=True) as conn:
        [(headcount, terminations)] = conn.execute(
            "SELECT (SELECT count(*) FROM int_baseline_workforce), "
            "(SELECT count(*) FROM int_termination_events WHERE simulation_year = ?)", [start_year]).fetchall()

    def miss(x) -> float:
        growth = (headcount * x[0] - terminations) / headcount
        return (growth - config.target_growth_rate) ** 2

    from scipy import optimize

    with monitoring.optimization("hire_rate_calibration", algorithm="Nelder-Mead",
                                 target={"growth_rate": config.target_growth_rate}, max_iterations=200,
                                 initial_params={"hire_rate": config.initial_hire_rate}, tolerance=1e-12,
                                 fiscal_year=start_year) as opt:
        result = optimize.minimize(miss, opt.x0, method="Nelder-Mead", callback=opt.scipy_callback,
                                   options={"maxiter": 200, "xatol": 1e-9, "fatol": 1e-16})
        opt.finish(result)
    hire_rate = round(float(result.x[0]), 6)
    context.log.info(f"hire_rate {hire_rate} makes {start_year} grow {config.target_growth_rate:.1%} "
                     f"({terminations} of {headcount} leave); {result.nit} iterations")
    return MaterializeResult(metadata={"planwise/hire_rate": hire_rate, "planwise/iterations": int(result.nit),
                                       "planwise/converged": bool(result.success),
                                       "planwise/optimization_id": opt.optimization_id})


simulation_job = define_asset_job("workforce_simulation_job", selection=[workforce_simulation])
calibration_job = define_asset_job("hire_rate_calibration_job", selection=[hire_rate_calibration])

monitoring = MonitoringResource(
    database_path=str(MONITORING_DB),
    sla_file=str(Path(__file__).with_name("sla.yaml")),
    scenario="baseline",
)

ALERTS = Path(__file__).with_name("alerts.yaml")

ARTIFACTS = Path(os.environ.get("PLANWISE_ARTIFACTS_DIR", REPO / "artifacts")).resolve()
monitoring_reports = build_monitoring_assets()

defs = Definitions(
    assets=[hire_rate_calibration, workforce_simulation, *monitoring_reports, run_summaries_spec],
    asset_checks=[build_monitoring_checks([workforce_simulation])],
    sensors=[build_performance_sensor([workforce_simulation], alert_config=ALERTS),
             build_run_failure_sensor(alert_config=ALERTS, artifacts_dir=ARTIFACTS),
             build_run_summary_sensor(artifacts_dir=ARTIFACTS),
             build_optimization_sensor(alert_config=ALERTS, parameter_bounds={"hire_rate": (0.0, 0.5)})],
    schedules=[build_monitoring_schedule(monitoring_reports)],
    jobs=[calibration_job, simulation_job],
    resources={"dbt": dbt_resource, "monitoring": monitoring},
)
