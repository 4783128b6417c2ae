from __future__ import annotations

import pytest

from planwise_monitoring.recording.partitions import PartitionKeyError, simulation_year_from_key


@pytest.mark.parametrize(
    "key, year",
    [
        ("2025", 2025),
        (" 2026 ", 2026),
        ("2027-01-01", 2027),  # yearly TimeWindowPartitionsDefinition keys
        ({"year": "2028", "scenario": "baseline"}, 2028),
        ({"simulation_year": "2029", "region": "2030"}, 2029),  # a named dimension wins
        ({"scenario": "baseline", "when": "2030"}, 2030),  # the only dimension holding a year
    ],
)
def test_year_from_partition_key(key, year):
    assert simulation_year_from_key(key) == year


@pytest.mark.parametrize(
    "key, message",
    [
        ("abc", "partition key 'abc' is not a simulation year"),
        ("20255", "is not a simulation year"),
        ("0000", "partition key '0000' is not a simulation year"),
        ("", "is not a simulation year"),
        ({"scenario": "baseline", "region": "eu"}, "has no year dimension"),
        ({"a": "2025", "b": "2026"}, "has no year dimension"),  # ambiguous
        ({"year": "next"}, "partition key 'next' is not a simulation year"),
    ],
)
def test_bad_keys_are_clear_errors(key, message):
    with pytest.raises(PartitionKeyError, match=message):
        simulation_year_from_key(key)
