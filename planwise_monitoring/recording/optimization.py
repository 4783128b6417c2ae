"""Optimization runs as the plugin records them: the tracker an optimizer reports to, and its records.

    with monitoring.optimization("merit_calibration", algorithm="Nelder-Mead", target={"growth_rate": 0.03},
                                 max_iterations=200, initial_params={"merit_rate": 0.03}) as opt:
        result = scipy.optimize.minimize(f, opt.x0, method="Nelder-Mead", callback=opt.scipy_callback,
                                         options={"maxiter": 200})
        opt.finish(result)

The tracker keeps each iteration in memory (a tuple appended to a list: a few microseconds on the
optimizer's path) and hands them to the record writer in chunks of :data:`CHUNK_ITERATIONS`
(spooled, never a database round trip while the optimizer runs); the run itself, the last chunk
and the parameter changes of a converged run go when the block ends. Records cross the spool as
JSON, each with a ``kind`` so the store knows what it holds, and are checked strictly when read
back, like :class:`~.records.PerformanceRecord`.

What a run's figures mean:

- ``converged``: the optimizer reported success (``OptimizeResult.success``) and, when the
  tracker was given a ``tolerance``, its objective is within it (an optimizer "succeeds" at the
  best value it can reach; an unreachable target is still a failure);
- ``failure_reason`` (None when converged): ``MAX_ITERATIONS`` (stopped at the iteration or
  evaluation limit), ``TARGET_NOT_REACHED`` (done, objective above the tolerance), ``NON_FINITE``
  (the objective is NaN or infinite), ``OPTIMIZER_STOPPED`` (any other unsuccessful stop, with
  the optimizer's message), ``EXCEPTION`` (raised inside the block: recorded, then re-raised
  unchanged), ``NOT_FINISHED`` (the block ended without :meth:`OptimizationTracker.finish`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import numbers
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal

from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config

from ..redaction import redact
from .measure import utcnow
from .records import _reason, error_class

log = logging.getLogger("planwise_monitoring")

CHUNK_ITERATIONS = 1000  # iterations per spooled file: ~60 KB, one file write per thousand iterations
CONVERGED, NOT_CONVERGED, FAILED = "CONVERGED", "NOT_CONVERGED", "FAILED"
FAILURE_REASONS = ("MAX_ITERATIONS", "TARGET_NOT_REACHED", "NON_FINITE", "OPTIMIZER_STOPPED", "EXCEPTION",
                   "NOT_FINISHED")
_NAME_LIMIT = 200
_MESSAGE_LIMIT = 2000

_STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


@with_config(_STRICT)
@dataclass(frozen=True)
class ParameterValues:
    """One parameter of a run: where the optimizer started and where it ended."""

    name: str
    initial_value: float | None
    final_value: float | None


@with_config(_STRICT)
@dataclass(frozen=True)
class OptimizationRun:
    """One row of ``mon_optimization_runs``, with its parameters (``mon_optimization_parameters``)."""

    optimization_id: str
    optimization_name: str
    algorithm: str
    scenario: str
    status: str  # CONVERGED, NOT_CONVERGED or FAILED
    converged: bool
    failure_reason: str | None
    started_at: datetime  # UTC
    finished_at: datetime  # UTC
    duration_seconds: float
    iterations: int
    function_evaluations: int | None
    max_iterations: int | None
    objective_value: float | None
    tolerance: float | None
    target: str | None  # JSON: what the optimization aimed at, e.g. {"growth_rate": 0.03}
    optimizer_message: str | None
    error_class: str | None
    error_message: str | None
    user_name: str
    dagster_run_id: str | None
    asset_key: str | None
    partition_key: str | None
    parameters: tuple[ParameterValues, ...] = ()
    kind: Literal["optimization_run"] = "optimization_run"

    @property
    def spool_id(self) -> str:
        return self.optimization_id

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), default=_encode, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> OptimizationRun:
        return _read(_RUN, text, _check_run)


# One tracked iteration: number, when (epoch seconds), objective, parameters, gradient norm.
Iteration = tuple[int, float, float | None, tuple[float | None, ...], float | None]


@with_config(_STRICT)
@dataclass(frozen=True)
class IterationChunk:
    """Consecutive iterations of one run (rows of ``mon_optimization_iterations``), spooled as one file."""

    optimization_id: str
    parameter_names: tuple[str, ...]
    iterations: tuple[Iteration, ...]
    kind: Literal["optimization_iterations"] = "optimization_iterations"

    @property
    def spool_id(self) -> str:
        return f"{self.optimization_id}.{self.iterations[0][0]}"

    def to_json(self) -> str:
        return json.dumps({"optimization_id": self.optimization_id, "parameter_names": self.parameter_names,
                           "iterations": self.iterations, "kind": self.kind}, separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> IterationChunk:
        return _read(_CHUNK, text, _check_chunk)


_RUN: TypeAdapter[OptimizationRun] = TypeAdapter(OptimizationRun)
_CHUNK: TypeAdapter[IterationChunk] = TypeAdapter(IterationChunk)


def _read(adapter: TypeAdapter[Any], text: str | bytes, check: Callable[[Any], None]) -> Any:
    try:
        value = adapter.validate_json(text)
    except ValidationError as exc:
        raise ValueError(_reason(exc)) from None
    check(value)
    return value


def _check_run(run: OptimizationRun) -> None:
    uuid.UUID(run.optimization_id)  # ValueError names it
    if run.status not in (CONVERGED, NOT_CONVERGED, FAILED):
        raise ValueError(f"status {run.status!r} is not one of CONVERGED, NOT_CONVERGED, FAILED")
    if run.failure_reason is not None and run.failure_reason not in FAILURE_REASONS:
        raise ValueError(f"failure_reason {run.failure_reason!r} is not one of {', '.join(FAILURE_REASONS)}")
    if run.duration_seconds < 0 or run.iterations < 0:
        raise ValueError("duration_seconds and iterations cannot be negative")


def _check_chunk(chunk: IterationChunk) -> None:
    uuid.UUID(chunk.optimization_id)
    if not chunk.iterations:
        raise ValueError("an iteration chunk holds at least one iteration")


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


def _finite(value: Any) -> float | None:
    """A figure as the store can hold it: a finite float, else None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class RunIdentity:
    """Who and where: stored with the run (the resource fills it from the Dagster context)."""

    user_name: str
    scenario: str
    dagster_run_id: str | None = None
    asset_key: str | None = None
    partition_key: str | None = None


class OptimizationTracker:
    """Records one optimization run; see the module docstring. Made by
    ``MonitoringResource.optimization(...)``; ``submit(records, at_end)`` hands records to the
    writer (``at_end``: the block is over, a direct write may be tried). Never raises because of
    the monitoring: a record that cannot be made or handed over is logged and the optimizer goes on."""

    def __init__(self, name: str, *, algorithm: str, identity: RunIdentity,
                 submit: Callable[[Sequence[Any], bool], None], target: Any = None,
                 max_iterations: int | None = None, initial_params: Any = None,
                 param_names: Sequence[str] | None = None, tolerance: float | None = None,
                 on_finished: Callable[[OptimizationRun], Sequence[Any]] | None = None):
        _check_text("optimization name", name)
        _check_text("algorithm", algorithm)
        if max_iterations is not None and (isinstance(max_iterations, bool) or not isinstance(max_iterations, int)
                                           or max_iterations < 1):
            raise ValueError(f"max_iterations must be a positive whole number, got {max_iterations!r}")
        if tolerance is not None and not (_finite(tolerance) is not None and float(tolerance) >= 0):
            raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
        self.optimization_id = str(uuid.uuid4())
        self.name, self.algorithm, self.identity = name, algorithm, identity
        self.max_iterations, self.tolerance = max_iterations, tolerance
        self.target = _target_json(target)
        self.parameter_names, self.x0 = _initial(initial_params, param_names)
        self._submit, self._on_finished = submit, on_finished
        self._iterations: list[Iteration] = []
        self._count = 0
        self._result: Any = None
        self.run: OptimizationRun | None = None  # the run as recorded, once the block has ended

    # -- the optimizer's path ---------------------------------------------------------------------
    def iteration(self, i: int, params: Any, objective: Any, gradient: Any = None) -> None:
        """Record iteration ``i`` (for optimizers that are not scipy's)."""
        try:
            values = params.tolist() if hasattr(params, "tolist") else list(params)
            norm = None if gradient is None else _norm(gradient)
            self._iterations.append((int(i), time.time(), _finite(objective), tuple(map(_finite, values)), norm))
            self._count += 1
            if len(self._iterations) >= CHUNK_ITERATIONS:
                self._hand_over_iterations(at_end=False)
        except Exception as exc:  # the optimizer goes on
            log.warning("planwise-monitoring: iteration %r of %s not recorded: %s: %s", i, self.name,
                        type(exc).__name__, exc)

    def scipy_callback(self, intermediate_result: Any) -> None:
        """``callback=`` of ``scipy.optimize.minimize`` (and of optimizers with the same protocol):
        given the intermediate ``OptimizeResult`` it records its ``x`` and ``fun``; the methods that
        pass only ``xk`` (TNC, COBYLA, COBYQA) are recorded without an objective."""
        x = getattr(intermediate_result, "x", intermediate_result)
        self.iteration(self._count + 1, x, getattr(intermediate_result, "fun", None))

    def finish(self, result: Any = None, *, converged: bool | None = None, final_params: Any = None,
               objective: Any = None, iterations: int | None = None) -> None:
        """The optimizer's result: a scipy ``OptimizeResult`` (``success``, ``x``, ``fun``, ``nit``,
        ``nfev``, ``message``) or, for another optimizer, the same figures as arguments."""
        self._result = _Result.of(result, converged, final_params, objective, iterations)

    # -- the block -------------------------------------------------------------------------------
    def __enter__(self) -> OptimizationTracker:
        self._started_at = utcnow()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        try:
            self.run = self._make_run(exc)
            self._hand_over_iterations(at_end=True, with_=[self.run, *self._changes(self.run)])
        except Exception as problem:  # never in the way of the optimizer's own exception, or of the asset
            log.warning("planwise-monitoring: optimization %s not recorded: %s", self.name,
                        redact(f"{type(problem).__name__}: {problem}"))
        return False  # an exception inside the block goes on unchanged

    def _changes(self, run: OptimizationRun) -> list[Any]:
        """The audit entries of a converged run; a failure to make them costs them only, not the run."""
        if self._on_finished is None or not run.converged:
            return []
        try:
            return list(self._on_finished(run))
        except Exception as problem:
            log.warning("planwise-monitoring: parameter changes of optimization %s not logged: %s", self.name,
                        redact(f"{type(problem).__name__}: {problem}"))
            return []

    def _make_run(self, exc: BaseException | None) -> OptimizationRun:
        duration = time.perf_counter() - self._t0
        last = self._iterations[-1] if self._iterations else None
        r = self._result or _Result()
        final = r.final_params if r.final_params is not None else (list(last[3]) if last else None)
        objective = r.objective if r.finished else (last[2] if last else None)
        iterations = r.iterations if r.iterations is not None else self._count
        reason = _failure_reason(exc, r, objective, iterations, self.max_iterations, self.tolerance)
        converged = reason is None
        names = self._names(len(final or ()))
        initial = self.x0 or [None] * len(names)
        finals = list(final) if final is not None else [None] * len(names)
        return OptimizationRun(
            optimization_id=self.optimization_id, optimization_name=self.name, algorithm=self.algorithm,
            scenario=self.identity.scenario, status=CONVERGED if converged else FAILED if exc else NOT_CONVERGED,
            converged=converged, failure_reason=reason, started_at=self._started_at,
            finished_at=self._started_at + timedelta(seconds=duration), duration_seconds=duration,
            iterations=iterations, function_evaluations=r.evaluations, max_iterations=self.max_iterations,
            objective_value=objective, tolerance=self.tolerance, target=self.target,
            optimizer_message=_clip(r.message), error_class=error_class(exc) if exc else None,
            error_message=_clip(redact(str(exc)) if exc else None), user_name=self.identity.user_name,
            dagster_run_id=self.identity.dagster_run_id, asset_key=self.identity.asset_key,
            partition_key=self.identity.partition_key,
            parameters=tuple(ParameterValues(n, _finite(a), _finite(b))
                             for n, a, b in zip(names, initial, finals, strict=False)),
        )

    def _names(self, width: int) -> tuple[str, ...]:
        """The parameters' names: as given, else x0, x1, … for a run started without them."""
        return self.parameter_names or _default_names(width)

    def _hand_over_iterations(self, at_end: bool, with_: Sequence[Any] = ()) -> None:
        chunk, self._iterations = self._iterations, []
        records = [*with_]
        if chunk:
            records.insert(0, IterationChunk(self.optimization_id, self._names(len(chunk[0][3])), tuple(chunk)))
        if records:
            self._submit(records, at_end)


@dataclass(frozen=True)
class _Result:
    """What an optimizer said when it was done (empty: :meth:`OptimizationTracker.finish` never called)."""

    finished: bool = False
    success: bool | None = None
    final_params: list[float | None] | None = None
    objective: float | None = None
    iterations: int | None = None
    evaluations: int | None = None
    message: str | None = None
    status: int | None = None

    @classmethod
    def of(cls, result: Any, converged: bool | None, final_params: Any, objective: Any,
           iterations: int | None) -> _Result:
        def pick(explicit: Any, attribute: str) -> Any:
            return explicit if explicit is not None else getattr(result, attribute, None)

        x = pick(final_params, "x")
        success = pick(converged, "success")
        nit = pick(iterations, "nit")
        nfev = getattr(result, "nfev", None)
        status = getattr(result, "status", None)
        message = getattr(result, "message", None)
        return cls(
            finished=True, success=None if success is None else bool(success),
            final_params=None if x is None else [_finite(v) for v in (x.tolist() if hasattr(x, "tolist") else x)],
            objective=_finite(pick(objective, "fun")),
            iterations=None if nit is None else int(nit), evaluations=None if nfev is None else int(nfev),
            message=None if message is None else str(message),
            status=None if status is None or isinstance(status, bool) else int(status),
        )


def _failure_reason(exc: BaseException | None, r: _Result, objective: float | None, iterations: int,
                    max_iterations: int | None, tolerance: float | None) -> str | None:
    if exc is not None:
        return "EXCEPTION"
    if not r.finished:
        return "NOT_FINISHED"
    if objective is None:
        return "NON_FINITE"
    if r.success is False:
        hit_limit = (max_iterations is not None and iterations >= max_iterations) or "maximum" in (r.message or "").lower()
        return "MAX_ITERATIONS" if hit_limit else "OPTIMIZER_STOPPED"
    if tolerance is not None and objective > tolerance:
        return "TARGET_NOT_REACHED"
    return None


def _initial(initial_params: Any, names: Sequence[str] | None) -> tuple[tuple[str, ...], list[float | None]]:
    """Parameter names and starting values: from a mapping (its keys), or values with ``param_names``."""
    if isinstance(initial_params, Mapping):
        if names is not None and list(names) != list(initial_params):
            raise ValueError("param_names must be the keys of initial_params, in order, when both are given")
        names, values = list(initial_params), list(initial_params.values())
    else:
        values = [] if initial_params is None else list(
            initial_params.tolist() if hasattr(initial_params, "tolist") else initial_params)
        names = list(names or _default_names(len(values)))
        if values and len(values) != len(names):
            raise ValueError(f"{len(names)} param_names for {len(values)} initial values")
    for name in names:
        _check_text("parameter name", name)
    return tuple(names), [_finite(v) for v in values]


def _default_names(width: int) -> tuple[str, ...]:
    return tuple(f"x{i}" for i in range(width))


def _target_json(target: Any) -> str | None:
    if target is None:
        return None
    values = dict(target) if isinstance(target, Mapping) else {"target": target}
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"target must be a number or a mapping of names to numbers; {name}: {value!r}")
    return json.dumps({str(k): float(v) for k, v in values.items()}, sort_keys=True)


def target_value(target_json: str | None) -> float | None:
    """The target as one number (for the audit trail), when it holds exactly one."""
    values = list(json.loads(target_json).values()) if target_json else []
    return _finite(values[0]) if len(values) == 1 else None


def _norm(gradient: Any) -> float | None:
    values = gradient.tolist() if hasattr(gradient, "tolist") else gradient
    if isinstance(values, (int, float)):
        return _finite(abs(values))
    return _finite(math.sqrt(sum(float(v) ** 2 for v in values)))


def _check_text(what: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > _NAME_LIMIT:
        raise ValueError(f"{what} must be 1-{_NAME_LIMIT} characters, got {value!r}")


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:_MESSAGE_LIMIT]


def epoch_to_utc(seconds: float) -> datetime:
    """An iteration's time (epoch seconds, as tracked) as the store's naive UTC."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
