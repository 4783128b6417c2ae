"""Many nodes, one Dagster instance and one monitoring store, both in a real PostgreSQL; and a node
lost while the monitoring database was down.

Every node is an OS process of its own (``planwise_monitoring_tests/multi_node_worker.py``) with a
private working directory and temp directory, its pod's local disk: the spool of a PostgreSQL
store lives there. The directory is deleted the moment the process exits, with whatever the node
spooled, as a pod's disk is. What the node measured must then still reach the store exactly once:
from Dagster's event log (``planwise/record`` on each materialization, ``planwise/records`` on the
observation of a failed step), by one tick of the performance sensor.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    EventLogRecord,
    SensorDefinition,
    build_sensor_context,
)
from psycopg.rows import dict_row

from planwise_monitoring import MonitoringResource
from planwise_monitoring.defs.metadata import RECORD_KEY, RECORDS_KEY
from planwise_monitoring.defs.sensors import build_performance_sensor
from planwise_monitoring.recording.records import PerformanceRecord
from planwise_monitoring.store import MonitoringStore

from ..multi_node_worker import (
    ALL_ASSETS,
    COMPONENTS,
    FAILURE_MESSAGE,
    MONITORING_URL_ENV,
    NODE_TAG,
    OUTAGE_DATABASE_ENV,
    OUTAGE_PORT_ENV,
    PID_TAG,
    YEARS,
    broken_component,
    expected_frame,
    outage_component,
)
from ..postgres_server import PostgresServer, dagster_postgres_yaml, init_dagster_schema

REPO = Path(__file__).resolve().parents[2]
NODE_TIMEOUT_SECONDS = 180.0
# Every column of a record as it is stored (the derived history columns and created_at are the store's).
RECORD_COLUMNS = [f.name for f in dataclasses.fields(PerformanceRecord) if f.name != "phases"]
SPOOLED_WARNING = "record(s) of this step are spooled in"
LEFT_AT_EXIT = "record(s) left in"


# -- nodes ------------------------------------------------------------------------------------------
@dataclass
class Node:
    name: str
    root: Path  # the pod's disk: cwd and TMPDIR, deleted when the process exits
    process: subprocess.Popen[bytes]
    stdout: Path  # outside the pod's disk: what the cluster's log collector keeps
    stderr: Path


@dataclass
class Outcome:
    name: str
    pid: int
    runs: list[dict[str, Any]]
    stderr: str
    spooled: list[str]  # the record ids in the node's spool when it exited
    root: Path


def dagster_home(postgres_server: PostgresServer, tmp_path: Path) -> Path:
    """A DAGSTER_HOME whose run, event-log and schedule storage is a fresh PostgreSQL database."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(dagster_postgres_yaml(postgres_server.create_database()))
    init_dagster_schema(home)  # once, before the nodes race on CREATE TABLE
    return home


def start_node(name: str, runs: Sequence[str], *, home: Path, monitoring_url: str, tmp_path: Path,
               env: dict[str, str] | None = None) -> Node:
    root = tmp_path / "pods" / name
    (root / "work").mkdir(parents=True)
    (root / "tmp").mkdir()
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    temp = str(root / "tmp")
    child_env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "TMPDIR": temp, "TEMP": temp, "TMP": temp,
        "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
        MONITORING_URL_ENV: monitoring_url,
        **(env or {}),
    }
    stdout, stderr = logs / f"{name}.out", logs / f"{name}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "planwise_monitoring_tests.multi_node_worker", "--node", name,
             *itertools.chain.from_iterable(("--run", r) for r in runs)],
            cwd=root / "work", env=child_env, stdout=out, stderr=err,
        )
    return Node(name, root, process, stdout, stderr)


def finish(nodes: Sequence[Node]) -> list[Outcome]:
    """Wait for the nodes; each one's disk is deleted as soon as its process exits."""
    deadline = time.monotonic() + NODE_TIMEOUT_SECONDS
    outcomes: dict[str, Outcome] = {}
    try:
        while len(outcomes) < len(nodes):
            for node in nodes:
                if node.name in outcomes or node.process.poll() is None:
                    continue
                spooled = sorted(p.stem for p in node.root.rglob("*.spool/*.json"))
                shutil.rmtree(node.root)  # the pod is gone, and its disk with it
                stderr = node.stderr.read_text(errors="replace")
                assert node.process.returncode == 0, f"{node.name} exited {node.process.returncode}:\n{stderr[-5000:]}"
                [result] = [line.removeprefix("RESULT ") for line in node.stdout.read_text().splitlines()
                            if line.startswith("RESULT ")]
                report = json.loads(result)
                outcomes[node.name] = Outcome(node.name, report["pid"], report["runs"], stderr, spooled, node.root)
            assert time.monotonic() < deadline, f"nodes still running after {NODE_TIMEOUT_SECONDS:g}s"
            time.sleep(0.05)
    finally:
        for node in nodes:
            if node.process.poll() is None:
                node.process.kill()
                node.process.wait()
    return [outcomes[n.name] for n in nodes]


# -- what the store and Dagster hold ----------------------------------------------------------------
def stored_rows(url: str) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        rows = conn.execute("SELECT * FROM mon_multi_year_performance ORDER BY execution_start_time").fetchall()
    for row in rows:
        row["performance_id"] = str(row["performance_id"])
    return rows


def database_of(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def materializations(instance: DagsterInstance, keys: Sequence[AssetKey]) -> list[EventLogRecord]:
    return [e for key in keys
            for e in instance.fetch_materializations(AssetRecordsFilter(asset_key=key), limit=1000).records]


def observations(instance: DagsterInstance, keys: Sequence[AssetKey]) -> list[EventLogRecord]:
    return [e for key in keys
            for e in instance.fetch_observations(AssetRecordsFilter(asset_key=key), limit=1000).records]


def performance_id(event: EventLogRecord) -> str:
    """The record id a materialization's ``planwise/performance_id`` names."""
    assert event.asset_materialization is not None
    return str(event.asset_materialization.metadata["planwise/performance_id"].value)


def carried(metadata: Any, key: str) -> list[PerformanceRecord]:
    data = metadata[key].data
    return [PerformanceRecord.from_json(json.dumps(p)) for p in (data if isinstance(data, list) else [data])]


def assert_row_is_the_record(row: dict[str, Any], record: PerformanceRecord) -> None:
    differ = {c: (row[c], getattr(record, c)) for c in RECORD_COLUMNS if row[c] != getattr(record, c)}
    assert not differ, f"stored row of {record.performance_id} differs from the record Dagster holds: {differ}"


def assert_row_matches_materialization(row: dict[str, Any], event: EventLogRecord) -> None:
    """The stored row is the record the materialization carries, and has the figures its
    ``planwise/*`` metadata shows."""
    m = event.asset_materialization
    assert m is not None
    md = m.metadata
    [record] = carried(md, RECORD_KEY)
    assert_row_is_the_record(row, record)
    assert md["planwise/performance_id"].value == row["performance_id"]
    assert md["planwise/duration_seconds"].value == round(row["execution_time_seconds"], 6)
    assert md["planwise/cpu_seconds"].value == round(row["cpu_seconds"], 6)
    assert md["planwise/peak_memory_mb"].value == round(row["memory_usage_mb"], 3)
    assert md["planwise/sla_status"].value == row["sla_status"]
    assert md["planwise/performance_category"].value == row["performance_category"]
    assert md["planwise/simulation_year"].value == row["simulation_year"]
    assert md["planwise/output_records"].value == row["output_record_count"] == md["dagster/row_count"].value
    assert row["output_record_count"] == len(expected_frame(row["component_name"], str(row["simulation_year"])))
    assert (row["simulation_run_id"], row["partition_key"], row["asset_key"]) == \
        (event.run_id, m.partition, m.asset_key.to_user_string())
    assert row["status"] == "SUCCESS" and row["error_class"] is None


def step_warnings(instance: DagsterInstance, run_id: str) -> dict[str, list[str]]:
    """The planwise-monitoring warnings in each step's Dagster log."""
    out: dict[str, list[str]] = {}
    for entry in instance.all_logs(run_id):
        if entry.is_dagster_event or "planwise-monitoring:" not in entry.user_message:
            continue
        out.setdefault(str(entry.step_key), []).append(entry.user_message)
    return out


def tick(sensor: SensorDefinition, instance: DagsterInstance, monitoring: MonitoringResource,
         cursor: str | None = None) -> Any:
    with build_sensor_context(instance=instance, cursor=cursor, resources={"monitoring": monitoring}) as context:
        data = sensor.evaluate_tick(context)
    for event in data.asset_events:  # what the daemon does with them
        instance.report_runless_asset_event(event)
    return data


# -- many nodes -------------------------------------------------------------------------------------
def test_four_nodes_record_every_step_once_into_one_store(postgres_server: PostgresServer, postgres_url: str,
                                                          tmp_path: Path) -> None:
    home = dagster_home(postgres_server, tmp_path)
    all_six = ",".join(a.key.path[-1] for a in COMPONENTS)
    nodes = [start_node(f"node{i}", [f"{all_six}@{year}" for year in YEARS], home=home,
                        monitoring_url=postgres_url, tmp_path=tmp_path) for i in range(4)]
    outcomes = finish(nodes)

    for o in outcomes:
        assert not o.root.exists()
        assert [r["success"] for r in o.runs] == [True] * 3, o.stderr[-5000:]
        assert all(all(r["unchanged"].values()) and len(r["unchanged"]) == 6 for r in o.runs)
    assert len({o.pid for o in outcomes}) == 4 and os.getpid() not in {o.pid for o in outcomes}

    rows = stored_rows(postgres_url)
    ids = [r["performance_id"] for r in rows]
    assert len(rows) == 72
    assert len(set(ids)) == 72
    with psycopg.connect(postgres_url) as conn:
        duplicated = conn.execute("SELECT performance_id FROM mon_multi_year_performance "
                                  "GROUP BY performance_id HAVING count(*) > 1").fetchall()
    assert duplicated == []

    with DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 12
        assert {r["simulation_run_id"] for r in rows} == {run.run_id for run in runs}
        node_of = {run.run_id: run.tags[NODE_TAG] for run in runs}
        assert {run.run_id: int(run.tags[PID_TAG]) for run in runs} == \
            {r["run_id"]: o.pid for o in outcomes for r in o.runs}
        seen = sorted((r["component_name"], r["simulation_year"], node_of[r["simulation_run_id"]]) for r in rows)
        assert seen == sorted(itertools.product([a.key.path[-1] for a in COMPONENTS], [int(y) for y in YEARS],
                                                [n.name for n in nodes]))

        events = {performance_id(e): e for e in materializations(instance, [a.key for a in COMPONENTS])}
        assert sorted(events) == sorted(ids)
        for row in rows:
            assert_row_matches_materialization(row, events[row["performance_id"]])

        # Nothing was missing, so the sensor rebuilds nothing; it judges all 72 materializations.
        monitoring = MonitoringResource(database_url=postgres_url, spool_dir=str(tmp_path / "sensor.spool"))
        data = tick(build_performance_sensor(COMPONENTS), instance, monitoring)
        assert len(data.asset_events) == 2 * 72
    assert sorted(r["performance_id"] for r in stored_rows(postgres_url)) == sorted(ids)


# -- a node lost ------------------------------------------------------------------------------------
def test_a_node_lost_while_the_store_was_down_loses_no_record(postgres_server: PostgresServer, postgres_url: str,
                                                              tmp_path: Path) -> None:
    home = dagster_home(postgres_server, tmp_path)
    db = database_of(postgres_url)
    postgres_server.refuse_connections(db)
    try:
        [lost] = finish([start_node("lost", ["component_0,component_1@2026", "broken_component@2026"],
                                    home=home, monitoring_url=postgres_url, tmp_path=tmp_path)])
    finally:
        postgres_server.allow_connections(db)

    good, failed = lost.runs
    assert good["success"] and good["unchanged"] == {"component_0": True, "component_1": True}
    assert not failed["success"]
    assert len(lost.spooled) == 3 and not lost.root.exists()  # all three records were on the disk now gone
    assert lost.stderr.count(SPOOLED_WARNING) >= 3 and f"3 {LEFT_AT_EXIT} {lost.root}" in lost.stderr

    monitoring = MonitoringResource(database_url=postgres_url, spool_dir=str(tmp_path / "sensor.spool"))
    store = monitoring.get_store()
    store.write([])  # the sensor's own spool is empty: this writes nothing
    assert stored_rows(postgres_url) == []

    with DagsterInstance.from_config(str(home)) as instance:
        for run, steps in [(good, ["component_0", "component_1"]), (failed, ["broken_component"])]:
            warnings = step_warnings(instance, run["run_id"])
            for step in steps:  # each step's own log says its record went to the node's spool
                assert any(SPOOLED_WARNING in w and "not currently accepting connections" in w and str(lost.root) in w
                           for w in warnings.get(step, [])), warnings
        mats = materializations(instance, [a.key for a in ALL_ASSETS])
        [observation] = observations(instance, [a.key for a in ALL_ASSETS])
        assert observation.run_id == failed["run_id"] and observation.asset_key == broken_component.key

        sensor = build_performance_sensor(ALL_ASSETS)
        first = tick(sensor, instance, monitoring)
        rows = {r["performance_id"]: r for r in stored_rows(postgres_url)}
        assert len(rows) == 3 and sorted(rows) == lost.spooled
        for event in mats:
            assert_row_matches_materialization(rows[performance_id(event)], event)
        assert observation.asset_observation is not None
        [failure] = carried(observation.asset_observation.metadata, RECORDS_KEY)
        assert_row_is_the_record(rows[failure.performance_id], failure)
        assert rows[failure.performance_id]["status"] == "FAILED"
        assert rows[failure.performance_id]["error_class"] == "ValueError"
        assert rows[failure.performance_id]["error_message"] == FAILURE_MESSAGE
        assert rows[failure.performance_id]["simulation_run_id"] == failed["run_id"]
        assert len(first.asset_events) == 2 * 2  # the two materializations judged: sla and regression

        # Exactly once: the next tick has nothing new, and a sensor starting over rewrites nothing.
        second = tick(sensor, instance, monitoring, cursor=first.cursor)
        assert second.skip_message and not second.asset_events
        tick(sensor, instance, monitoring)
    assert sorted(r["performance_id"] for r in stored_rows(postgres_url)) == lost.spooled


def test_an_outage_that_begins_inside_a_step(postgres_server: PostgresServer, postgres_url: str,
                                             tmp_path: Path) -> None:
    """The database goes away in the middle of the node's second run, terminating the connection
    the first run left in the node's pool: the steps before it are stored directly, the outage's
    step and those after it only from Dagster's event log, each once."""
    home = dagster_home(postgres_server, tmp_path)
    db = database_of(postgres_url)
    MonitoringStore(postgres_url, spool_dir=tmp_path / "admin.spool").write([])  # the store exists already
    try:
        [node] = finish([start_node(
            "node", ["component_0@2027", "outage_component@2027", "component_1@2027"],
            home=home, monitoring_url=postgres_url, tmp_path=tmp_path,
            env={OUTAGE_PORT_ENV: str(postgres_server.port), OUTAGE_DATABASE_ENV: db})])
    finally:
        postgres_server.allow_connections(db)

    assert [r["success"] for r in node.runs] == [True] * 3
    assert [r["unchanged"] for r in node.runs] == [{"component_0": True}, {"outage_component": True},
                                                   {"component_1": True}]
    direct = stored_rows(postgres_url)
    assert [r["component_name"] for r in direct] == ["component_0"]
    assert len(node.spooled) == 2 and direct[0]["performance_id"] not in node.spooled

    with DagsterInstance.from_config(str(home)) as instance:
        first_run, outage_run, after_run = (r["run_id"] for r in node.runs)
        assert not step_warnings(instance, first_run)
        assert any(SPOOLED_WARNING in w for w in step_warnings(instance, outage_run).get("outage_component", []))
        assert any(SPOOLED_WARNING in w for w in step_warnings(instance, after_run).get("component_1", []))

        keys = [COMPONENTS[0].key, outage_component.key, COMPONENTS[1].key]
        monitoring = MonitoringResource(database_url=postgres_url, spool_dir=str(tmp_path / "sensor.spool"))
        sensor = build_performance_sensor(ALL_ASSETS)
        first = tick(sensor, instance, monitoring)
        rows = {r["performance_id"]: r for r in stored_rows(postgres_url)}
        assert len(rows) == 3 and set(node.spooled) < set(rows)
        for event in materializations(instance, keys):
            assert_row_matches_materialization(rows[performance_id(event)], event)
        assert len(first.asset_events) == 2 * 3
        assert tick(sensor, instance, monitoring, cursor=first.cursor).skip_message
    assert len(stored_rows(postgres_url)) == 3

