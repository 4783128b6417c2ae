"""Measuring one step: wall time, CPU seconds and peak memory of the step's process tree.

    from planwise_monitoring.recording.measure import StepMeter

    with StepMeter() as meter:
        with meter.phase("load"):
            data = bytearray(50 * 2**20)
        del data
    m = meter.measurement
    assert m.peak_memory_mb - m.start_memory_mb >= 45  # the peak, though freed before the end

Peak memory is the largest resident set of the process plus its descendants while the step runs:
the kernel's own high-water mark for this process (reset at the start of the step through
``/proc/self/clear_refs``, so nothing the step frees is missed), and a background sampler that adds
the resident memory of live child processes such as a dbt subprocess. A child that lives for less
than one sampling interval is still bounded below by ``getrusage(RUSAGE_CHILDREN)``.
CPU seconds are user + system time of this process and of the children it has waited for.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
import resource
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import psutil
from pydantic import ConfigDict, with_config

from .figures import clean_count, clean_duration, clean_timestamp

_MB = 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@with_config(ConfigDict(strict=True, extra="forbid", allow_inf_nan=False))  # read back strictly from the spool
@dataclass(frozen=True)
class PhaseTiming:
    """A named sub-phase of a step, timed with :meth:`StepMeter.phase`.

        with StepMeter() as meter:
            with meter.phase("load"):
                pass
        [load] = meter.measurement.phases
        assert load.name == "load" and load.duration_seconds >= 0
    """

    name: str
    started_at: datetime
    duration_seconds: float


@dataclass(frozen=True)
class ComponentTiming:
    """A component timed by the step itself, e.g. one dbt model of a ``dbt build``.

        from planwise_monitoring.recording.measure import ComponentTiming, StepMeter

        with StepMeter() as meter:
            meter.add_component(ComponentTiming("stg_people", "DBT_MODEL", duration_seconds=1.5))
            meter.add_component(ComponentTiming("broken", "DBT_MODEL", duration_seconds=float("nan")))
        assert [c.component_name for c in meter.components] == ["stg_people"]
        assert "broken" in meter.warnings[0]

    Reported with :meth:`MonitoringResource.record_component`; it becomes a record of its own
    that shares the step's run, year and scenario. ``output_name`` (or ``asset_key``) names the
    step output whose materialization carries the component's metadata.
    """

    component_name: str
    component_type: str
    duration_seconds: float
    started_at: datetime | None = None  # UTC; defaults to the step's start
    output_records: int | None = None
    status: str = "SUCCESS"
    error_class: str | None = None
    error_message: str | None = None
    output_name: str | None = None
    asset_key: str | None = None

    def cleaned(self) -> tuple[ComponentTiming | None, list[str]]:
        """This component as it can be recorded, and a warning for each thing changed or refused.

        A duration that is NaN, infinite, negative or absurdly long refuses the component alone
        (its step and the other components are recorded): the duration is the one figure a
        component record is for, the store requires it, and its SLA verdict and the step's CPU
        share derive from it. A bad record count becomes None, an unknown status FAILED."""
        name = f"component {self.component_name!r}"
        if not isinstance(self.component_name, str) or not self.component_name.strip():
            return None, [f"{name} has no name; it is not recorded"]
        duration, problem = clean_duration(self.duration_seconds, f"{name}: duration")
        if duration is None:
            return None, [f"{problem}; the component is not recorded"]
        warnings: list[str] = []
        records, problem = clean_count(self.output_records, f"{name}: output_records")
        started_at, problem_start = clean_timestamp(self.started_at, f"{name}: started_at")
        warnings += [f"{p}; ignored" for p in (problem, problem_start) if p]
        status = str(self.status).upper()
        if status not in ("SUCCESS", "FAILED"):
            warnings.append(f"{name}: status {self.status!r} is neither SUCCESS nor FAILED; recorded as FAILED")
            status = "FAILED"
        return dataclasses.replace(
            self, component_type=str(self.component_type), duration_seconds=duration, started_at=started_at,
            output_records=records, status=status,
            error_class=None if self.error_class is None else str(self.error_class),
            error_message=None if self.error_message is None else str(self.error_message),
        ), warnings


@dataclass(frozen=True)
class Measurement:
    started_at: datetime  # UTC
    ended_at: datetime  # UTC
    duration_seconds: float
    cpu_seconds: float
    peak_memory_mb: float
    start_memory_mb: float
    phases: tuple[PhaseTiming, ...] = ()


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _own_rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * _PAGE


def _own_hwm_bytes() -> int | None:
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_own_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # 5 resets only the peak-RSS counter, nothing else
        return True
    except OSError:
        return False


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0  # the child has exited meanwhile


def _descendants(pid: int) -> list[int]:
    """Descendant pids, read from /proc/<pid>/task/<tid>/children: a few small reads, where a
    scan of all of /proc (psutil's way, the fallback) costs milliseconds on a busy host."""
    if not _HAS_CHILDREN_FILES:
        try:
            return [c.pid for c in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue  # exited meanwhile
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children", "rb") as f:
                    children = [int(c) for c in f.read().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


_HAS_CHILDREN_FILES = os.path.exists(f"/proc/self/task/{threading.get_native_id()}/children")


def _children_maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class StepMeter:
    """
        with StepMeter() as meter:
            meter.set_record_counts(output_records=1200)
        assert meter.measurement.duration_seconds >= 0 and meter.output_records == 1200

    Context manager that measures the code it wraps (see the module docstring). Figures the
    step reports are checked on the way in; what was refused is in :attr:`warnings`.
    """

    def __init__(self, sample_interval_seconds: float = 0.1):
        self.sample_interval_seconds = sample_interval_seconds
        self.phases: list[PhaseTiming] = []
        self.components: list[ComponentTiming] = []
        self.overhead_seconds = 0.0  # time spent by the monitoring itself inside the step
        self.input_records: int | None = None
        self.output_records: int | None = None
        self.measurement: Measurement | None = None
        # Figures refused or changed on the way in, for the caller to relay to the step's log.
        self.warnings: list[str] = []
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        self._tree_peak = 0

    # -- the step's own API -------------------------------------------------------------------
    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a named sub-phase of the step (e.g. ``"load"``, ``"transform"``)."""
        started, t0 = utcnow(), time.perf_counter()
        try:
            yield
        finally:
            self.phases.append(PhaseTiming(str(name), started, time.perf_counter() - t0))

    def set_record_counts(self, input_records: object = None, output_records: object = None) -> None:
        """Set the step's input and/or output record counts explicitly (they win over inference).

        Never raises: a count that is not a whole number from 0 to BIGINT's maximum (NaN, inf,
        negative, 10**20, a non-numeric string) is dropped with a warning in :attr:`warnings`,
        and the count is inferred as if it had not been set."""
        if input_records is not None:
            self.input_records = self._count(input_records, "input_records")
        if output_records is not None:
            self.output_records = self._count(output_records, "output_records")

    def _count(self, value: object, what: str) -> int | None:
        count, warning = clean_count(value, f"set_record_counts: {what}")
        if warning:
            self.warnings.append(f"{warning}; ignored")
        return count

    @contextlib.contextmanager
    def overhead(self) -> Iterator[None]:
        """Count the wrapped time as the monitoring's own (self-monitoring)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.overhead_seconds += time.perf_counter() - t0

    def add_component(self, component: ComponentTiming) -> None:
        """Report a component timed inside this step (see :class:`ComponentTiming`).

        Never raises: what cannot be recorded is refused or set to None, with a warning in
        :attr:`warnings` (see :meth:`ComponentTiming.cleaned`)."""
        if not isinstance(component, ComponentTiming):
            self.warnings.append(f"record_component() takes a ComponentTiming, not {type(component).__name__}; ignored")
            return
        cleaned, warnings = component.cleaned()
        self.warnings += warnings
        if cleaned is not None:
            self.components.append(cleaned)

    # -- measuring ------------------------------------------------------------------------------
    def start(self) -> StepMeter:
        self._started_at = utcnow()
        self._t0 = time.perf_counter()
        self._cpu0 = _cpu_seconds()
        self._hwm_reset = _reset_own_hwm()
        self._start_rss = self._sample_tree()
        self._children_maxrss0 = _children_maxrss_bytes()
        self._sampler = threading.Thread(target=self._sample_loop, name="planwise-memory-sampler", daemon=True)
        self._sampler.start()
        return self

    def stop(self) -> Measurement:
        duration = time.perf_counter() - self._t0
        cpu = _cpu_seconds() - self._cpu0
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join()
        self._sample_tree()
        peak = self._tree_peak
        hwm = _own_hwm_bytes() if self._hwm_reset else None
        if hwm is not None:
            peak = max(peak, hwm)
        children_maxrss = _children_maxrss_bytes()
        if children_maxrss > self._children_maxrss0:
            # A child reaped during the step peaked at this size, perhaps between two samples.
            peak = max(peak, self._start_rss + children_maxrss)
        self.measurement = Measurement(
            started_at=self._started_at,
            ended_at=utcnow(),
            duration_seconds=duration,
            cpu_seconds=max(cpu, 0.0),
            peak_memory_mb=peak / _MB,
            start_memory_mb=self._start_rss / _MB,
            phases=tuple(self.phases),
        )
        return self.measurement

    def __enter__(self) -> StepMeter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _sample_tree(self) -> int:
        total = _own_rss_bytes() + sum(_rss_bytes(pid) for pid in _descendants(os.getpid()))
        self._tree_peak = max(self._tree_peak, total)
        return total

    def _sample_loop(self) -> None:
        while not self._stop.wait(self.sample_interval_seconds):
            self._sample_tree()


_current_meter: contextvars.ContextVar[StepMeter | None] = contextvars.ContextVar(
    "planwise_current_meter", default=None
)


def current_meter() -> StepMeter | None:
    """The meter of the monitored step running in this context, if any."""
    return _current_meter.get()


@contextlib.contextmanager
def active_meter(meter: StepMeter) -> Iterator[StepMeter]:
    token = _current_meter.set(meter)
    try:
        yield meter
    finally:
        _current_meter.reset(token)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Time a sub-phase of the monitored step running here; a no-op outside one.

        from planwise_monitoring.recording.measure import phase

        with phase("write_snapshot"):
            ...
    """
    meter = current_meter()
    if meter is None:
        yield
        return
    with meter.phase(name):
        yield
