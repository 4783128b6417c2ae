"""Test helpers: records to store, a real second process that holds the database lock, and a real
HTTP server on 127.0.0.1 for webhooks."""

from __future__ import annotations

import contextlib
import http.server
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

from planwise_monitoring.recording.optimization import OptimizationRun, ParameterValues
from planwise_monitoring.recording.records import SUCCESS, PerformanceRecord

_HOLD_LOCK = """
import sys, duckdb
conn = duckdb.connect(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()  # hold the write lock until the test closes our stdin
conn.close()
"""


def make_record(**overrides) -> PerformanceRecord:
    start = overrides.pop("execution_start_time", datetime(2026, 1, 1, 12, 0, 0))
    seconds = overrides.pop("execution_time_seconds", 10.0)
    fields = dict(
        performance_id=str(uuid.uuid4()),
        simulation_run_id="run-1",
        simulation_id="sim-1",
        simulation_year=2025,
        scenario="baseline",
        component_name="scd_workforce_state",
        component_type="SCD",
        asset_key="scd_workforce_state",
        partition_key="2025",
        status=SUCCESS,
        execution_start_time=start,
        execution_end_time=start + timedelta(seconds=seconds),
        execution_time_seconds=seconds,
        cpu_seconds=1.0,
        memory_usage_mb=300.0,
        memory_start_mb=200.0,
        input_record_count=None,
        output_record_count=1000,
        records_per_second=1000 / seconds if seconds else None,
        sla_threshold_seconds=120.0,
        warning_threshold_seconds=90.0,
        sla_status="WITHIN_SLA",
        performance_category="EXCELLENT",
    )
    fields.update(overrides)
    return PerformanceRecord(**fields)


def make_optimization_run(i: int = 0, **overrides) -> OptimizationRun:
    """The i-th run of a converged calibration, finished at 2026-03-01 09:30 plus i minutes (+ 3 s)."""
    started = overrides.pop("started_at", datetime(2026, 3, 1, 9, 30) + timedelta(minutes=i))
    seconds = overrides.pop("duration_seconds", 3.0)
    fields = dict(
        optimization_id=f"00000000-0000-4000-8000-{i:012d}", optimization_name="merit_calibration",
        algorithm="Nelder-Mead", scenario="baseline", status="CONVERGED", converged=True, failure_reason=None,
        started_at=started, finished_at=started + timedelta(seconds=seconds), duration_seconds=seconds,
        iterations=40, function_evaluations=80, max_iterations=200, objective_value=1e-9, tolerance=1e-6,
        target='{"growth_rate": 0.03}', optimizer_message="ok", error_class=None, error_message=None,
        user_name="ana", dagster_run_id="run-1", asset_key="calibration", partition_key=None,
        parameters=(ParameterValues("merit_rate", 0.03, 0.035), ParameterValues("cola_rate", 0.02, 0.025)))
    fields.update(overrides)
    return OptimizationRun(**fields)


@contextlib.contextmanager
def lock_held_by_another_process(db_path: Path) -> Iterator[subprocess.Popen]:
    """A separate process opens the DuckDB file for writing and keeps it open until the block ends."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(db_path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


class RecordingServer:
    """A real HTTP server on 127.0.0.1 recording POSTs; ``respond(path) -> (status, body)``."""

    def __init__(self, port: int = 0, respond: Callable[[str], tuple[int, str]] = lambda path: (200, "ok"),
                 delay: float = 0.0):
        self.requests: list[dict] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                                       "json": json.loads(body)})
                time.sleep(delay)
                status, text = respond(self.path)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            allow_reuse_address = True  # to come back on the same port
            daemon_threads = True
            block_on_close = False

        self._server = Server(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
