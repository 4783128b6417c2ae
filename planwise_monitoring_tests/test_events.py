"""The JSON event log: one line per event, level filtering, redaction, and rotation that loses no
line, with one writer and with four real processes writing at once."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import io
import itertools
import json
import logging
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from planwise_monitoring.events import (
    EVENT_LOGGER,
    JsonEventLog,
    JsonFormatter,
    JsonLogConfig,
    log_files,
    read_events,
)

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
KEYS = ["timestamp", "level", "run_id", "asset", "simulation_year", "component", "event", "pid", "fields"]


def _strict_loads(line: str) -> dict:
    """json.loads, but NaN/Infinity (which json.loads accepts and real JSON does not) fail."""
    def reject(constant: str):
        raise ValueError(f"non-JSON constant {constant}")
    return json.loads(line, parse_constant=reject)


def _raw_lines(path: Path) -> list[str]:
    """Every line of every file, oldest first, checking none is torn (each ends with a newline)."""
    lines = []
    for file in log_files(path):
        text = file.read_text(encoding="utf-8")
        assert text == "" or text.endswith("\n"), f"{file} ends in a partial line"
        lines.extend(text.splitlines())
    return lines


def _burst(path: str, worker: int, count: int, max_bytes: int, backup_count: int, start: Any = None) -> None:
    """Runs in a spawned process: ``count`` events numbered 0..count-1. ``start`` (a barrier) holds
    every process back until all have imported, so the bursts overlap instead of running in turn."""
    if start is not None:
        start.wait(timeout=120)
    with JsonEventLog(JsonLogConfig(path=path, max_bytes=max_bytes, backup_count=backup_count)) as log:
        for seq in range(count):
            log.event("burst", run_id=f"run-{worker}", asset="fct_yearly_events", simulation_year=2025 + seq % 5,
                      component="EVENT_GENERATION", worker=worker, seq=seq, note="x" * (seq % 17))


def test_one_line_per_event_with_all_fields(tmp_path: Path):
    path = tmp_path / "logs" / "planwise.jsonl"  # the directory does not exist yet
    with JsonEventLog(JsonLogConfig(path=str(path))) as log:
        log.event("step_started", run_id="r-1", asset="scd_workforce_state", simulation_year=2025, component="SCD")
        log.event("step_finished", level="warning", run_id="r-1", asset="scd_workforce_state",
                  simulation_year=2025, component="SCD", duration_seconds=12.5, output_records=1234,
                  event="a field may be called event", phases={"load": 1.5, "write": [1, 2]})
        log.event("bare")

    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    started, finished, bare = (_strict_loads(line) for line in lines)
    assert list(finished) == KEYS
    assert TIMESTAMP.match(finished["timestamp"])
    assert started["timestamp"] <= finished["timestamp"] <= bare["timestamp"]
    assert finished["pid"] == os.getpid()
    assert {k: finished[k] for k in KEYS[1:7]} == {
        "level": "WARNING", "run_id": "r-1", "asset": "scd_workforce_state", "simulation_year": 2025,
        "component": "SCD", "event": "step_finished"}
    assert finished["fields"] == {"duration_seconds": 12.5, "output_records": 1234,
                                  "event": "a field may be called event", "phases": {"load": 1.5, "write": [1, 2]}}
    assert started["fields"] == {} and started["level"] == "INFO"
    assert bare["run_id"] is None and bare["simulation_year"] is None
    assert read_events(path) == [started, finished, bare]


def test_levels_below_the_configured_one_are_dropped(tmp_path: Path):
    path = tmp_path / "planwise.jsonl"
    with JsonEventLog(JsonLogConfig(path=str(path), level="warning")) as log:
        for level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "info", "error"):
            log.event("e", level=level)
        assert not log.enabled_for("INFO") and log.enabled_for("ERROR")
    assert [e["level"] for e in read_events(path)] == ["WARNING", "ERROR", "CRITICAL", "ERROR"]
    with pytest.raises(ValueError, match="level"):
        JsonLogConfig(level="LOUD")
    with pytest.raises(ValueError, match="max_bytes"):
        JsonLogConfig(max_bytes=-1)


class Colour(str, enum.Enum):
    RED = "red"


def test_values_json_cannot_hold_are_coerced(tmp_path: Path):
    import numpy as np

    path = tmp_path / "planwise.jsonl"
    cyclic: list = [1]
    cyclic.append(cyclic)
    with JsonEventLog(JsonLogConfig(path=str(path))) as log:
        log.event("plain", when=dt.datetime(2025, 1, 31, 12, 0, tzinfo=dt.UTC), day=dt.date(2025, 1, 31),
                  amount=decimal.Decimal("1.10"), id=uuid.UUID(int=1), where=Path("/tmp/x"), tags={"a"},
                  colour=Colour.RED, n=np.int64(7), x=np.float32(0.5), arr=np.arange(3), error=KeyError("k"))
        log.event("not finite", nan=float("nan"), inf=float("inf"), np_nan=np.float64("nan"),
                  nested={"deep": [float("-inf"), 1.0]}, keys={1: "a", (2, 3): "b", None: "c"}, cyclic=cyclic)
        log.event("year as numpy", simulation_year=np.int32(2026))

    plain, not_finite, year = (_strict_loads(line) for line in path.read_text(encoding="utf-8").splitlines())
    assert plain["fields"] == {"when": "2025-01-31T12:00:00+00:00", "day": "2025-01-31", "amount": "1.10",
                               "id": "00000000-0000-0000-0000-000000000001", "where": "/tmp/x", "tags": ["a"],
                               "colour": "red", "n": 7, "x": 0.5, "arr": [0, 1, 2], "error": "KeyError: 'k'"}
    fields = not_finite["fields"]
    assert (fields["nan"], fields["inf"], fields["np_nan"], fields["nested"]) == (None, None, None, {"deep": [None, 1.0]})
    assert fields["keys"] == {"1": "a", "(2, 3)": "b", "null": "c"}
    assert fields["cyclic"][0] == 1  # cut off at some depth rather than failing the line
    assert year["simulation_year"] == 2026


def test_secret_environment_values_are_redacted_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "planwise.jsonl"
    token = "tok-s3cr3t-9f8e7d"
    with JsonEventLog(JsonLogConfig(path=str(path))) as log:
        log.event("before", note="harmless")  # primes the cache of secrets before the variable exists
        monkeypatch.setenv("PLANWISE_TEST_TOKEN", token)
        monkeypatch.setenv("PLANWISE_TEST_PASSWORD", 'pa"ss\\wo\nrd')  # changes when JSON-escaped
        log.event(f"login {token}", run_id=f"run-{token}", asset=token, component=f"c{token}",
                  message=f"connect failed for https://u:{token}@host", **{f"key-{token}": 1},
                  nested={"list": [f"a {token} b", 'x pa"ss\\wo\nrd y']}, error=RuntimeError(f"bad token {token}"),
                  nan=float("nan"))  # NaN forces the slow encoding path as well

    raw = path.read_text(encoding="utf-8")
    assert token not in raw and "pa\\\"ss" not in raw
    before, after = read_events(path)
    assert before["fields"] == {"note": "harmless"}
    assert after["event"] == "login ***" and after["run_id"] == "run-***" and after["asset"] == "***"
    assert after["component"] == "c***"
    assert after["fields"] == {"message": "connect failed for https://u:***@host", "key-***": 1,
                               "nested": {"list": ["a *** b", "x *** y"]}, "error": "RuntimeError: bad token ***",
                               "nan": None}


def test_burst_of_100k_lines_from_one_process_keeps_every_line_in_order(tmp_path: Path):
    path = tmp_path / "planwise.jsonl"
    _burst(str(path), worker=0, count=100_000, max_bytes=200_000, backup_count=10_000)

    files = log_files(path)
    assert len(files) > 50  # ~20 MB of lines: it did rotate, many times
    assert all(f.stat().st_size <= 200_000 for f in files)
    lines = _raw_lines(path)
    assert len(lines) == 100_000
    # read oldest file first, so one writer's lines come back in the order written
    assert [_strict_loads(line)["fields"]["seq"] for line in lines] == list(range(100_000))


def test_burst_of_100k_lines_from_four_processes_loses_duplicates_and_tears_none(tmp_path: Path):
    path = tmp_path / "planwise.jsonl"
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(4)
    workers = [ctx.Process(target=_burst, args=(str(path), w, 25_000, 200_000, 10_000, start)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
    assert [p.exitcode for p in workers] == [0, 0, 0, 0]

    assert all(f.stat().st_size <= 200_000 for f in log_files(path))
    events = [_strict_loads(line) for line in _raw_lines(path)]  # raises on any torn or merged line
    assert len(events) == 100_000
    seen = Counter((e["fields"]["worker"], e["fields"]["seq"]) for e in events)
    assert set(seen) == {(w, s) for w in range(4) for s in range(25_000)}
    assert max(seen.values()) == 1
    assert len({e["pid"] for e in events}) == 4
    # the writers really did run at once: one after another would switch process 3 times; at once
    # they switch hundreds to tens of thousands of times (fewer the busier the machine)
    assert sum(a["pid"] != b["pid"] for a, b in itertools.pairwise(events)) > 30
    for w in range(4):  # each process's lines stay in its order across rotations by the others
        assert [e["fields"]["seq"] for e in events if e["fields"]["worker"] == w] == list(range(25_000))


def test_retention_drops_only_the_oldest_files(tmp_path: Path):
    path = tmp_path / "planwise.jsonl"
    with JsonEventLog(JsonLogConfig(path=str(path), max_bytes=2_000, backup_count=3)) as log:
        for seq in range(500):
            log.event("tick", seq=seq)

    assert [f.name for f in log_files(path)] == [f"planwise.jsonl.{i}" for i in (3, 2, 1)] + ["planwise.jsonl"]
    seqs = [e["fields"]["seq"] for e in read_events(path)]
    assert 0 < len(seqs) < 500
    assert seqs == list(range(500 - len(seqs), 500))  # a contiguous tail: only the oldest went
    # and every backup was rotated only when full (the next line would not have fit)
    longest = max(len(line.encode()) + 1 for line in _raw_lines(path))
    assert all(2_000 - longest < f.stat().st_size <= 2_000 for f in log_files(path)[:-1])


def test_zero_backups_keeps_the_file_bounded(tmp_path: Path):
    path = tmp_path / "planwise.jsonl"
    with JsonEventLog(JsonLogConfig(path=str(path), max_bytes=1_000, backup_count=0)) as log:
        for seq in range(200):
            log.event("tick", seq=seq)
    assert log_files(path) == [path] and path.stat().st_size <= 1_000
    assert read_events(path)[-1]["fields"]["seq"] == 199


def test_an_unwritable_location_never_raises_and_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the log directory should be")
    log = JsonEventLog(JsonLogConfig(path=str(blocker / "logs" / "planwise.jsonl")))
    with caplog.at_level(logging.WARNING, logger="planwise_monitoring"):
        for _ in range(3):
            log.event("lost", run_id="r-1")  # must not raise
        log.close()
    warnings = [r for r in caplog.records if r.name == "planwise_monitoring"]
    assert len(warnings) == 1 and "planwise.jsonl" in warnings[0].getMessage()


def _write_from(log: JsonEventLog, worker: int, count: int) -> None:
    for seq in range(count):
        log.event("tick", worker=worker, seq=seq)


def test_threads_and_forked_children_sharing_one_log_object_lose_nothing(tmp_path: Path):
    """A forked child inherits the parent's fds, and with them the parent's flock; it must reopen
    its own. Threads of one process share one flock, so a thread lock must order them."""
    path = tmp_path / "planwise.jsonl"
    config = JsonLogConfig(path=str(path), max_bytes=20_000, backup_count=10_000)
    log = JsonEventLog(config)
    log.event("opened")  # the fds exist before the fork
    children = [multiprocessing.get_context("fork").Process(target=_write_from, args=(log, w, 3_000))
                for w in (1, 2)]
    for child in children:
        child.start()
    threads = [threading.Thread(target=_write_from, args=(log, w, 3_000)) for w in (3, 4)]
    threads.append(threading.Thread(target=_write_from, args=(JsonEventLog(config), 5, 3_000)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for child in children:
        child.join(timeout=60)
    log.close()
    assert [child.exitcode for child in children] == [0, 0]

    events = [_strict_loads(line) for line in _raw_lines(path)][1:]
    assert sorted((e["fields"]["worker"], e["fields"]["seq"]) for e in events) == [
        (w, s) for w in range(1, 6) for s in range(3_000)]


# -- the logging integration -------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def event_logger():
    """The events logger with a collecting handler, restored afterwards."""
    logger = logging.getLogger(EVENT_LOGGER)
    saved = logger.level, logger.propagate, logger.disabled
    handler = _Collect()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield logger, handler
    logger.removeHandler(handler)
    logger.setLevel(saved[0])
    logger.propagate, logger.disabled = saved[1], saved[2]


def test_events_reach_the_named_logger_redacted_with_their_fields(tmp_path: Path, event_logger,
                                                                  monkeypatch: pytest.MonkeyPatch):
    logger, collected = event_logger
    monkeypatch.setenv("PLANWISE_TEST_TOKEN", "tok-routed-5e6f7a")
    stream = io.StringIO()
    formatted = logging.StreamHandler(stream)
    formatted.setFormatter(JsonFormatter())
    logger.addHandler(formatted)
    try:
        with JsonEventLog(JsonLogConfig(path=str(tmp_path / "planwise.jsonl"))) as log:
            log.event("store_unavailable", level="WARNING", run_id="r-1", asset="a", simulation_year=2025,
                      component="SCD", message="locked; token tok-routed-5e6f7a")
            log.event("records_written", level="DEBUG", records=3)  # below the logger's INFO
    finally:
        logger.removeHandler(formatted)

    [record] = collected.records
    assert (record.name, record.levelname, record.getMessage()) == (EVENT_LOGGER, "WARNING", "store_unavailable")
    assert (record.run_id, record.asset, record.simulation_year, record.component) == ("r-1", "a", 2025, "SCD")
    assert record.fields == {"message": "locked; token ***"}
    # a user's handler with our formatter writes exactly the file's line
    assert stream.getvalue() == (tmp_path / "planwise.jsonl").read_text(encoding="utf-8")
    assert "tok-routed" not in stream.getvalue()


def test_the_logger_does_not_propagate_until_configured(tmp_path: Path):
    logger = logging.getLogger(EVENT_LOGGER)
    assert logger.propagate is False  # set at import: no configuration named it before
    root_handler = _Collect()
    logging.getLogger().addHandler(root_handler)
    try:
        with JsonEventLog(JsonLogConfig(path=str(tmp_path / "p.jsonl"))) as log:
            log.event("alerts_dispatched", level="ERROR")
            logger.propagate = True  # what `propagate: true` in a dictConfig does
            log.event("alerts_dispatched", level="CRITICAL")
    finally:
        logger.propagate = False
        logging.getLogger().removeHandler(root_handler)
    assert [r.levelname for r in root_handler.records if r.name == EVENT_LOGGER] == ["CRITICAL"]


def test_a_logger_configured_before_import_is_left_as_configured():
    code = ("import logging.config\n"
            "logging.config.dictConfig({'version': 1, 'loggers': {'planwise_monitoring.events': {'propagate': True}}})\n"
            "import planwise_monitoring.events\n"
            "print(logging.getLogger('planwise_monitoring.events').propagate)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_without_a_file_events_go_to_the_logger_only(tmp_path: Path, event_logger, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, collected = event_logger
    log = JsonEventLog(JsonLogConfig(path=None))
    log.event("evaluated", run_id="r-2", verdict="ok")
    log.close()
    assert [(r.getMessage(), r.fields) for r in collected.records] == [("evaluated", {"verdict": "ok"})]
    assert list(tmp_path.iterdir()) == []
    assert log.enabled_for("INFO") and not log.enabled_for("DEBUG")


def test_a_logging_config_that_disables_existing_loggers_does_not_stop_the_file(tmp_path: Path, event_logger):
    import logging.config

    logger, collected = event_logger
    path = tmp_path / "planwise.jsonl"
    loggers = [lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    enabled = [lg for lg in loggers if not lg.disabled]
    try:
        with JsonEventLog(JsonLogConfig(path=str(path))) as log:
            logging.config.dictConfig({"version": 1, "disable_existing_loggers": True})
            assert logger.disabled
            log.event("still_written")
    finally:
        for lg in enabled:  # undo it for the other tests
            lg.disabled = False
    assert [e["event"] for e in read_events(path)] == ["still_written"]
    assert collected.records == []  # the user turned the logger off: respected


def test_the_formatter_encodes_and_redacts_any_record(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PLANWISE_TEST_SECRET", "s3cr3t-in-user-record")
    try:
        raise ValueError("boom s3cr3t-in-user-record")
    except ValueError:
        record = logging.LogRecord("user", logging.ERROR, __file__, 1, "user said %s", ("hi",), sys.exc_info())
    record.run_id = "r-9"
    line = JsonFormatter().format(record)
    event = _strict_loads(line)
    assert (event["event"], event["level"], event["run_id"], event["asset"]) == ("user said hi", "ERROR", "r-9", None)
    assert "ValueError: boom ***" in event["fields"]["exception"]
    assert "s3cr3t-in-user-record" not in line


def test_a_failing_file_warns_once_per_interval_of_the_injected_clock(tmp_path: Path, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the log directory should be")
    now = [1000.0]
    log = JsonEventLog(JsonLogConfig(path=str(blocker / "planwise.jsonl")), clock=lambda: now[0])
    log._directory_ready = True  # let the handler itself fail on opening the file, not makedirs
    with caplog.at_level(logging.WARNING, logger="planwise_monitoring"):
        log.event("lost")
        now[0] += 59.0
        log.event("lost")
        log.event("lost")
        now[0] += 1.5
        log.event("lost")
    warnings = [r.getMessage() for r in caplog.records if r.name == "planwise_monitoring"]
    assert len(warnings) == 2
    assert "1 event(s) dropped" in warnings[0] and "3 event(s) dropped" in warnings[1]


def test_the_next_event_after_close_reopens_the_file(tmp_path: Path):
    path = tmp_path / "planwise.jsonl"
    log = JsonEventLog(JsonLogConfig(path=str(path)))
    log.event("one")
    log.close()
    path.unlink()
    log.event("two")
    log.close()
    assert [e["event"] for e in read_events(path)] == ["two"]


def _fill_disk(path: str, limit: int) -> None:
    """Runs in a spawned process whose files may not grow beyond ``limit`` bytes (RLIMIT_FSIZE):
    the line that crosses it is written short, then refused, like on a full disk."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    with JsonEventLog(JsonLogConfig(path=path, max_bytes=0)) as log:
        for seq in range(200):
            log.event("tick", seq=seq, pad="x" * 37)


def test_a_short_write_leaves_no_torn_line(tmp_path: Path):
    path = tmp_path / "planwise.jsonl"
    child = multiprocessing.get_context("spawn").Process(target=_fill_disk, args=(str(path), 5_000))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 0
    text = path.read_text(encoding="utf-8")
    assert 4_000 < len(text) <= 5_000 and text.endswith("\n")  # the crossing line was cut off again
    assert [_strict_loads(line)["fields"]["seq"] for line in text.splitlines()] == list(range(len(text.splitlines())))


def test_zero_backups_with_two_writers_overwrites_no_line(tmp_path: Path):
    """Truncating in place keeps every writer appending. (The stock handler reopens the file
    without O_APPEND, so the writer that truncated goes on writing at its own offset, over the
    lines the other writer appended meanwhile.) Two log objects have two descriptors and two
    locks, as two processes would; taking turns makes the interleaving certain."""
    path = tmp_path / "planwise.jsonl"
    config = JsonLogConfig(path=str(path), max_bytes=1_000, backup_count=0)
    with JsonEventLog(config) as first, JsonEventLog(config) as second:
        for seq in range(300):
            (first if seq % 7 < 3 else second).event("tick", seq=seq)
            assert path.stat().st_size <= 1_000
            # a line written over another, or after a hole of NULs, fails here
            seqs = [_strict_loads(line)["fields"]["seq"] for line in _raw_lines(path)]
            assert seqs == list(range(seq + 1 - len(seqs), seq + 1))


def test_dagster_puts_the_events_in_the_run_log_when_it_manages_the_logger(tmp_path: Path):
    from dagster import DagsterInstance, asset, materialize

    from planwise_monitoring import MonitoringResource, monitor_performance

    @asset
    @monitor_performance("SCD")
    def routed(context) -> None:  # (annotations are strings here, which Dagster cannot resolve)
        pass

    settings = {"python_logs": {"managed_python_loggers": [EVENT_LOGGER], "python_log_level": "INFO"}}
    with DagsterInstance.ephemeral(settings=settings) as instance:
        result = materialize([routed], instance=instance,
                             resources={"monitoring": MonitoringResource(database_path=str(tmp_path / "m.duckdb"))})
        run_log = [e.message for e in instance.all_logs(result.run_id) if not e.is_dagster_event]
    assert run_log == ["step_recorded"]
    [event] = read_events(tmp_path / "logs" / "planwise-monitoring.jsonl")  # and the file, as ever
    assert (event["event"], event["asset"]) == ("step_recorded", "routed")
