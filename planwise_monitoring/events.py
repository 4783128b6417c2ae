"""Structured event log: every monitoring event as one JSON line, on the standard ``logging`` module.

    import os, tempfile
    from planwise_monitoring.events import JsonEventLog, JsonLogConfig, read_events

    path = os.path.join(tempfile.mkdtemp(), "planwise.jsonl")
    with JsonEventLog(JsonLogConfig(path=path, max_bytes=1_000_000, backup_count=5)) as log:
        log.event("step_finished", run_id="r-1", asset="scd_workforce_state", simulation_year=2025,
                  component="SCD", duration_seconds=12.5)
    [line] = read_events(path)
    assert line["event"] == "step_finished" and line["fields"] == {"duration_seconds": 12.5}

One line looks like::

    {"timestamp":"2025-01-31T12:00:00.123Z","level":"INFO","run_id":"r-1","asset":"scd_workforce_state",
     "simulation_year":2025,"component":"SCD","event":"step_finished","pid":4242,
     "fields":{"duration_seconds":12.5}}

**Routing events into your own logging.** Every event is also a :class:`logging.LogRecord` on the
logger ``planwise_monitoring.events`` (:data:`EVENT_LOGGER`). Its message is the event name; its
attributes ``run_id``, ``asset``, ``simulation_year``, ``component``, ``event`` and ``fields`` are
already redacted, so any formatter may print them (``%(run_id)s``), and :class:`JsonFormatter`
writes the line above::

    import logging
    from planwise_monitoring.events import EVENT_LOGGER, JsonFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    events = logging.getLogger(EVENT_LOGGER)
    events.addHandler(handler)
    events.setLevel(logging.INFO)

In Dagster, listing the logger under ``python_logs: managed_python_loggers`` in ``dagster.yaml``
(with ``python_log_level: INFO``) puts the events into each run's log.
The logger does not propagate unless you say so (``propagate: true`` in a ``dictConfig``), so a
root console handler does not repeat every event; if your configuration names the logger before
this module is imported, it is left exactly as you configured it. ``JsonLogConfig(path=None)``
(``json_log_path=""`` on the resource) writes no file: the logger is then the only destination.
The file is written by its own handler, not through the logger, so a ``dictConfig`` that disables
existing loggers or raises their level cannot silently stop it.

**Rotation across processes.** Dagster's multiprocess executor runs each step in its own process,
sensors in another, and all append to one file. The file handler is ``concurrent-log-handler``'s
:class:`~concurrent_log_handler.ConcurrentRotatingFileHandler`: an exclusive ``flock`` on
``.__<name>.lock`` beside the log serialises "check size → rotate → append" across processes, a
process whose file was rotated away by another reopens it (inode check), and a forked child takes
its own lock. On top of it, :class:`_JsonLinesFileHandler` keeps today's guarantees:

* a file is rotated before the line that would take it past ``max_bytes`` (the stock handler only
  rotates once a file is already over, so files would exceed the limit by a line);
* each line is one ``os.write`` on an ``O_APPEND`` descriptor, and a short write (disk full) is cut
  off again, so a reader never sees a torn line or two lines glued together;
* ``backup_count=0`` truncates the file in place (the stock handler reopens it without
  ``O_APPEND``, so its next lines would overwrite other processes' lines).

Backups are ``<path>.1`` (newest) … ``<path>.<backup_count>``; the oldest is the only line ever
dropped. :func:`read_events` takes the same lock shared, so it never sees a rotation half done.

**Secrets.** Every string written (event name, ids, field names and values, and ``str()`` of
values JSON cannot hold) passes through :func:`planwise_monitoring.redaction.redact`, before the
record reaches any handler. A line is first serialised and searched for the (JSON-escaped) secret
values and for secrets that announce themselves (URL passwords, ``token=``…); only a line that may
hold one is rebuilt with every string redacted. That is exact: ``redact(text) == text`` whenever
the search finds nothing.

Monitoring must never break the pipeline: :meth:`JsonEventLog.event` never raises. An I/O error
(disk full, permissions) drops the event and logs one warning on the ``planwise_monitoring``
logger, at most once a minute per log. Cost per line: ``benchmarks/event_log.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from concurrent_log_handler import ConcurrentRotatingFileHandler

from ._json_lines import encode_event, iso_timestamp

EVENT_LOGGER = "planwise_monitoring.events"
LEVELS: dict[str, int] = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}
_WARNING_INTERVAL_SECONDS = 60.0
_LINE = "planwise_json_line"  # the record attribute holding the line event() already encoded

log = logging.getLogger("planwise_monitoring")

# Leave a logger the user configured before importing us alone; otherwise keep events off the
# root handlers until asked (the user's dictConfig, applied later, sets propagate as it says).
if not isinstance(logging.Logger.manager.loggerDict.get(EVENT_LOGGER), logging.Logger):
    logging.getLogger(EVENT_LOGGER).propagate = False
_event_logger = logging.getLogger(EVENT_LOGGER)


@dataclass(frozen=True)
class JsonLogConfig:
    """Where the log goes and how much of it to keep.

        config = JsonLogConfig(path="logs/planwise-monitoring.jsonl", max_bytes=10 * 2**20, backup_count=5)
        no_file = JsonLogConfig(path=None)  # events reach the planwise_monitoring.events logger only

    ``max_bytes`` per file (0 = never rotate) and ``backup_count`` rotated files besides the
    current one. Events below ``level`` are not written to the file."""

    path: str | None = "logs/planwise-monitoring.jsonl"
    max_bytes: int = 10 * 2**20
    backup_count: int = 5
    level: str = "INFO"

    def __post_init__(self) -> None:
        if self.max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {self.max_bytes}")
        if self.backup_count < 0:
            raise ValueError(f"backup_count must be >= 0, got {self.backup_count}")
        if str(self.level).upper() not in LEVELS:
            raise ValueError(f"level must be one of {sorted(LEVELS)}, got {self.level!r}")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON event line (see the module docstring), redacted.

        import logging
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logging.getLogger("planwise_monitoring.events").addHandler(handler)

    Records from :meth:`JsonEventLog.event` carry their line already; any other record (your own
    ``logger.info("x", extra={"run_id": ...})``) is encoded from its attributes, the message as
    the event name and a traceback, if any, as the field ``exception``."""

    def format(self, record: logging.LogRecord) -> str:
        line = record.__dict__.get(_LINE)
        if isinstance(line, str):
            return line
        raw = getattr(record, "fields", None)
        fields = dict(raw) if isinstance(raw, Mapping) else {} if raw is None else {"fields": raw}
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        _, line = encode_event({
            "timestamp": iso_timestamp(record.created), "level": record.levelname,
            "run_id": getattr(record, "run_id", None), "asset": getattr(record, "asset", None),
            "simulation_year": getattr(record, "simulation_year", None),
            "component": getattr(record, "component", None),
            "event": getattr(record, "event", None) or record.getMessage(), "pid": record.process,
            "fields": fields})
        return line


class _JsonLinesFileHandler(ConcurrentRotatingFileHandler):
    """ConcurrentRotatingFileHandler with exact size limits, one write per line and in-place
    truncation for ``backupCount=0`` (see the module docstring). Its errors go to ``on_error``."""

    def __init__(self, path: str, max_bytes: int, backup_count: int, on_error: Callable[[BaseException], None]):
        super().__init__(path, mode="a", maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
        self.setFormatter(JsonFormatter())
        self._on_error = on_error
        # The encoded line between format() and do_write(): handle() holds self.lock over the whole
        # emit(), so no other thread runs in between.
        self._pending = b""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        # backslashreplace turns a lone surrogate into the JSON escape "\udcxx": still valid JSON.
        self._pending = (line + "\n").encode("utf-8", "backslashreplace")
        return line

    def shouldRollover(self, record: logging.LogRecord) -> bool:
        if self.maxBytes <= 0:
            return False
        size = self._current_size()
        return size > 0 and size + len(self._pending) > self.maxBytes

    def _current_size(self) -> int:
        stream = self.stream
        if stream is not None and not stream.closed:
            return os.fstat(stream.fileno()).st_size
        try:
            return os.path.getsize(self.baseFilename)
        except FileNotFoundError:
            return 0

    def doRollover(self) -> None:
        if self.backupCount > 0:
            super().doRollover()
            return
        os.truncate(self.baseFilename, 0)  # every writer appends (O_APPEND), so all continue at 0
        self.num_rollovers += 1

    def do_write(self, msg: str) -> None:
        if self.stream is None or self.stream.closed:
            self.stream = self.do_open()  # mode "a": O_APPEND
        _write_all(self.stream.fileno(), self._pending)

    def handleError(self, record: logging.LogRecord) -> None:
        self._on_error(sys.exc_info()[1] or RuntimeError("event log handler failed"))


def _write_all(fd: int, data: bytes) -> None:
    """One os.write in practice; on a short write or an error, cut the partial line off again so
    the next line does not glue onto a torn one (the caller holds the lock: nobody else appended)."""
    written = 0
    try:
        while written < len(data):
            n = os.write(fd, data[written:] if written else data)
            if n <= 0:
                raise OSError("short write to the JSON event log")
            written += n
    except OSError:
        if written:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, os.fstat(fd).st_size - written)
        raise


class JsonEventLog:
    """Writes monitoring events as JSON lines to ``config.path`` (rotated by size, safe across
    processes and threads) and to the ``planwise_monitoring.events`` logger.

        import tempfile
        with JsonEventLog(JsonLogConfig(path=f"{tempfile.mkdtemp()}/events.jsonl")) as log:
            log.event("records_written", level="DEBUG", records=3)   # below INFO: not in the file
            log.event("store_unavailable", level="WARNING", message="database is locked")

    :meth:`event` never raises. Usable as a context manager; after :meth:`close` the next event
    reopens the file. ``clock`` (monotonic seconds) paces the warning about a failing file."""

    def __init__(self, config: JsonLogConfig | None = None, *, clock: Callable[[], float] = time.monotonic):
        self.config = config if config is not None else JsonLogConfig()
        # Absolute now, so a later chdir in one step process cannot split the log in two.
        self.path = os.path.abspath(self.config.path) if self.config.path else None
        self._threshold = LEVELS[self.config.level.upper()]
        self._clock = clock
        self._last_warning = -math.inf
        self._dropped = 0
        self._directory_ready = False
        self._handler = None if self.path is None else _JsonLinesFileHandler(
            self.path, self.config.max_bytes, self.config.backup_count, self._warn)

    def __enter__(self) -> JsonEventLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def enabled_for(self, level: str) -> bool:
        """Whether an event at ``level`` would be written anywhere (to skip building costly fields)."""
        levelno = LEVELS.get(str(level).upper(), logging.INFO)
        return (self._handler is not None and levelno >= self._threshold) or _forwarded(levelno)

    def event(self, event: str, /, *, level: str | int = "INFO", run_id: str | None = None,
              asset: str | None = None, simulation_year: int | None = None, component: str | None = None,
              **fields: Any) -> None:
        """Write one event. ``event`` is positional-only so a field may be called ``event`` too.
        Unknown level names are written as given and filtered as INFO."""
        try:
            name = logging.getLevelName(level) if isinstance(level, int) else str(level).upper()
            levelno = LEVELS.get(name, logging.INFO)
            to_file = self._handler is not None and levelno >= self._threshold
            to_logger = _forwarded(levelno)
            if not (to_file or to_logger):
                return
            record = _record(name, levelno, event, run_id, asset, simulation_year, component, fields)
            if to_file and self._handler is not None:
                if not self._directory_ready:
                    os.makedirs(os.path.dirname(str(self.path)), exist_ok=True)
                    self._directory_ready = True
                self._handler.handle(record)
            if to_logger:
                _event_logger.handle(record)
        except Exception as exc:
            self._warn(exc)

    def close(self) -> None:
        """Close the file (the next event reopens it)."""
        if self._handler is not None:
            with contextlib.suppress(Exception):
                self._handler.close()

    def _warn(self, exc: BaseException) -> None:
        try:
            self._dropped += 1
            now = self._clock()
            if now - self._last_warning < _WARNING_INTERVAL_SECONDS:
                return
            self._last_warning = now
            from .redaction import redact

            log.warning("JSON event log %s failed (%s); %d event(s) dropped since the last warning. "
                        "This warning repeats at most once a minute.",
                        self.path, redact(f"{type(exc).__name__}: {exc}"), self._dropped)
            self._dropped = 0
        except Exception:
            pass


def _forwarded(levelno: int) -> bool:
    """Whether the logger would pass a record on: enabled, and someone listening (with nobody,
    logging's last resort would print WARNING records to stderr)."""
    return _event_logger.isEnabledFor(levelno) and bool(_event_logger.handlers or _event_logger.propagate)


def _record(level: str, levelno: int, event: str, run_id: Any, asset: Any, simulation_year: Any,
            component: Any, fields: dict[str, Any]) -> logging.LogRecord:
    """A LogRecord carrying the redacted event as attributes and as its encoded JSON line."""
    record = logging.LogRecord(EVENT_LOGGER, levelno, "", 0, event, None, None)
    record.levelname = level  # an unknown level is written as given
    doc, line = encode_event({
        "timestamp": iso_timestamp(record.created), "level": level, "run_id": run_id, "asset": asset,
        "simulation_year": simulation_year, "component": component, "event": event,
        "pid": record.process or os.getpid(), "fields": fields})
    record.msg = doc["event"] if isinstance(doc["event"], str) else str(doc["event"])
    record.__dict__.update(run_id=doc["run_id"], asset=doc["asset"], simulation_year=doc["simulation_year"],
                           component=doc["component"], event=doc["event"], fields=doc["fields"])
    record.__dict__[_LINE] = line
    return record


# -- reading -----------------------------------------------------------------------------------

_BACKUP = re.compile(r"\.(\d+)$")


def log_files(path: str | Path) -> list[Path]:
    """The log's files, oldest first: ``<path>.N`` … ``<path>.1``, ``<path>`` (those that exist).

        assert log_files("/nonexistent/planwise.jsonl") == []
    """
    path = Path(path)
    backups: list[tuple[int, Path]] = []
    if path.parent.is_dir():
        prefix = path.name + "."
        for entry in path.parent.iterdir():
            if entry.name.startswith(prefix) and (m := _BACKUP.fullmatch(entry.name[len(path.name):])):
                backups.append((int(m.group(1)), entry))
    files = [p for _, p in sorted(backups, reverse=True)]
    if path.exists():
        files.append(path)
    return files


def read_events(path: str | Path, *, strict: bool = True) -> list[dict[str, Any]]:
    """Every event in the log and its backups, oldest first (for tests and tools).

        assert read_events("/nonexistent/planwise.jsonl") == []

    Holds the writers' lock shared meanwhile, so no rotation happens mid-read. ``strict=False``
    skips undecodable lines instead of raising ValueError."""
    lock_dir, lock_name = ConcurrentRotatingFileHandler.baseLockFilename(os.path.abspath(path))
    lock_fd = -1
    with contextlib.suppress(OSError):
        lock_fd = os.open(os.path.join(lock_dir, lock_name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if lock_fd >= 0:
            fcntl.flock(lock_fd, fcntl.LOCK_SH)
        events: list[dict[str, Any]] = []
        for file in log_files(path):
            with open(file, encoding="utf-8", errors="surrogateescape") as fh:
                for number, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        events.append(json.loads(line))
                    except ValueError as exc:
                        if strict:
                            raise ValueError(f"{file}:{number}: not a JSON line: {exc}") from exc
        return events
    finally:
        if lock_fd >= 0:
            os.close(lock_fd)  # also releases the lock
