"""The package's public surface: what ``planwise_monitoring`` exports, and the 0.1 paths kept for a release."""

from __future__ import annotations

import importlib
import subprocess
import sys
import warnings

import pytest
from dagster import AssetSpec

import planwise_monitoring
from planwise_monitoring._deprecated import OLD_MODULES, OLD_TOP_LEVEL


def test_every_public_name_resolves_and_is_documented():
    for name in planwise_monitoring.__all__:
        value = getattr(planwise_monitoring, name)
        if isinstance(value, AssetSpec):  # a spec to add to Definitions: described for the UI, not in code
            assert value.description, f"{name} has no description"
            continue
        assert value.__doc__, f"{name} has no docstring"
        assert value.__module__.startswith("planwise_monitoring."), name


def test_users_import_everything_they_need_from_the_package():
    for name in ["MonitoringResource", "monitor_performance", "monitored_dbt_build", "ComponentTiming",
                 "build_monitoring_assets", "build_monitoring_schedule", "build_run_summary_sensor",
                 "build_monitoring_checks", "build_performance_sensor", "build_run_failure_sensor"]:
        assert name in planwise_monitoring.__all__


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        planwise_monitoring.nope  # noqa: B018


@pytest.mark.parametrize("old, new", sorted(OLD_MODULES.items()))
def test_old_module_paths_are_the_new_modules_with_a_warning(old, new):
    # run in a fresh interpreter: here the old module may already be cached by an earlier test
    code = (
        "import warnings, importlib\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        f"try:\n    importlib.import_module('planwise_monitoring.{old}')\n"
        "except DeprecationWarning as w:\n    print('WARNED', w)\n"
        "warnings.simplefilter('ignore')\n"
        f"assert importlib.import_module('planwise_monitoring.{old}') is "
        f"importlib.import_module('planwise_monitoring.{new}')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert f"planwise_monitoring.{old} moved to planwise_monitoring.{new}" in out


@pytest.mark.parametrize("name, module", sorted(OLD_TOP_LEVEL.items()))
def test_old_top_level_names_still_resolve_with_a_warning(name, module):
    planwise_monitoring.__dict__.pop(name, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = getattr(planwise_monitoring, name)
    assert value is getattr(importlib.import_module(f"planwise_monitoring.{module}"), name)
    assert any(issubclass(w.category, DeprecationWarning) and name in str(w.message) for w in caught)
