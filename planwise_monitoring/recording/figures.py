"""Which measured figures can be stored: a bad figure becomes None, with a warning, never an error.

A record count or a duration comes from user code (``set_record_counts``, a dbt run_results file,
``record_component``), so it may be NaN, infinite, negative, a string, or too large for the
database's BIGINT. Monitoring must not fail the step over it, nor let it block the spool later,
so every figure is checked here once, when it enters the record, and each function returns the
usable value (or None) and the warning to relay (or None).

    from planwise_monitoring.recording.figures import clean_count, clean_duration

    assert clean_count(1200, "output_records") == (1200, None)
    count, warning = clean_count(float("nan"), "output_records")
    assert count is None and "not a record count" in warning
    assert clean_duration(-1.0, "duration of stg_people")[0] is None
"""

from __future__ import annotations

import math
import operator
from datetime import UTC, datetime

BIGINT_MAX = 2**63 - 1  # the store keeps counts in BIGINT columns
# Longer than any run (about 31 years), and short enough that start + duration is a valid datetime.
MAX_DURATION_SECONDS = 1e9
YEAR_RANGE = (1, 9999)  # what a datetime, and so a simulation year, can name


def clean_count(value: object, what: str) -> tuple[int | None, str | None]:
    """
        assert clean_count(10.0, "input_records") == (10, None)   # an integral float is a count
        assert clean_count(10**20, "output_records")[0] is None   # beyond BIGINT

    A record count as an int in ``0..BIGINT_MAX``; anything else is None with a warning.
    """
    if value is None:
        return None, None
    count = _as_int(value)
    if count is None or not 0 <= count <= BIGINT_MAX:
        return None, f"{what} {_show(value)} is not a record count (a whole number from 0 to {BIGINT_MAX})"
    return count, None


def clean_duration(value: object, what: str) -> tuple[float | None, str | None]:
    """
        assert clean_duration(1.5, "duration") == (1.5, None)
        assert clean_duration(float("nan"), "duration")[0] is None

    A duration in seconds: finite, not negative, at most :data:`MAX_DURATION_SECONDS`.
    """
    seconds = _as_float(value)
    if seconds is None or seconds < 0 or seconds > MAX_DURATION_SECONDS:
        return None, f"{what} {_show(value)} is not a duration (finite seconds from 0 to {MAX_DURATION_SECONDS:g})"
    return seconds, None


def clean_measure(value: object, what: str) -> tuple[float | None, str | None]:
    """
        assert clean_measure(float("inf"), "cpu_seconds")[0] is None

    A non-negative finite figure (CPU seconds, megabytes, a rate, a threshold), or None.
    """
    if value is None:
        return None, None
    number = _as_float(value)
    if number is None or number < 0:
        return None, f"{what} {_show(value)} is not a finite, non-negative number"
    return number, None


def clean_year(value: object, what: str = "simulation_year") -> tuple[int | None, str | None]:
    """
        assert clean_year(2026) == (2026, None) and clean_year(2**40)[0] is None

    A simulation year that a timestamp can hold (1..9999), or None.
    """
    if value is None:
        return None, None
    year = _as_int(value)
    if year is None or not YEAR_RANGE[0] <= year <= YEAR_RANGE[1]:
        return None, f"{what} {_show(value)} is not a year"
    return year, None


def clean_timestamp(value: object, what: str) -> tuple[datetime | None, str | None]:
    """
        assert clean_timestamp(datetime(2026, 1, 1, tzinfo=UTC), "at")[0] == datetime(2026, 1, 1)

    A naive UTC datetime (the store's convention); an aware one is converted, anything else is None.
    """
    if value is None:
        return None, None
    if not isinstance(value, datetime):
        return None, f"{what} {_show(value)} is not a datetime"
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None), None
    return value, None


def _as_int(value: object) -> int | None:
    if type(value) is int:  # the common case first: this runs for every figure of every record
        return value
    if isinstance(value, bool):
        return None  # True is an int to Python, but never a meant count
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    try:
        return operator.index(value)  # type: ignore[arg-type]  # int, numpy integers; TypeError otherwise
    except TypeError:
        number = _as_float(value)  # e.g. numpy float32, Decimal
        return _as_int(number) if number is not None else None


def _as_float(value: object) -> float | None:
    if type(value) is float:  # the common case first
        return value if math.isfinite(value) else None
    if isinstance(value, bool) or not _is_real(value):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except Exception:  # e.g. an int beyond a float's range, or a __float__ that raises: never our problem
        return None
    return number if math.isfinite(number) else None


def _is_real(value: object) -> bool:
    # numbers.Real would miss numpy scalars on some versions; anything with __float__ that is not text will do
    return hasattr(value, "__float__") and not isinstance(value, (str, bytes, complex))


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
