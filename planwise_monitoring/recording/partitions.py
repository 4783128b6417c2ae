"""Which simulation year a partition key stands for.

    from planwise_monitoring.recording.partitions import simulation_year_from_key

    assert simulation_year_from_key("2026") == 2026
    assert simulation_year_from_key("2026-01-01") == 2026            # yearly time partitions
    assert simulation_year_from_key({"year": "2027", "scenario": "base"}) == 2027
"""

from __future__ import annotations

import re
from collections.abc import Mapping

YEAR_DIMENSIONS = ("simulation_year", "year")
_YEAR_KEY = re.compile(r"^\s*(\d{4})(?:-\d{2}-\d{2})?\s*$")


class PartitionKeyError(ValueError):
    """A partition key that does not name a simulation year."""


def simulation_year_from_key(key: str | Mapping[str, str]) -> int:
    """The year of a partition key: ``"2025"``, ``"2025-01-01"``, or a multi-dimensional key (a
    mapping of dimension to key, e.g. ``MultiPartitionKey.keys_by_dimension``) with a
    ``simulation_year`` or ``year`` dimension, or else exactly one dimension that holds a year."""
    if isinstance(key, Mapping):
        for name in YEAR_DIMENSIONS:
            if name in key:
                return simulation_year_from_key(key[name])
        years = {dim: m.group(1) for dim, value in key.items() if (m := _YEAR_KEY.match(str(value)))}
        if len(years) == 1:
            return int(next(iter(years.values())))
        raise PartitionKeyError(
            f"partition key {dict(key)} has no year dimension: name one of its dimensions "
            f"{' or '.join(YEAR_DIMENSIONS)}, with keys such as '2025'"
        )
    match = _YEAR_KEY.match(str(key))
    if not match or match.group(1) == "0000":  # no year 0: no timestamp (nor the store) could hold it
        raise PartitionKeyError(
            f"partition key {key!r} is not a simulation year (expected a key such as '2025' or '2025-01-01')"
        )
    return int(match.group(1))
