"""The signature Dagster sees for a function that needs the monitoring resource.

Dagster decides what to pass a function (context, inputs, resources) from its signature alone:
the parameters, their kinds and their annotations. ``@monitor_performance`` and the sensors that
read the monitoring database both add the resource (and ``context``, when missing) this way, so
what Dagster sees is decided here once and pinned by ``test_signature.py``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Dagster's own rule for "this function takes the context": a first parameter with one of these names.
CONTEXT_NAMES = ("context", "_context")


@dataclass(frozen=True)
class ResourceSignature:
    """What Dagster is shown, and what the wrapper must therefore strip before calling ``fn``.

        import inspect
        from dagster import AssetExecutionContext
        from planwise_monitoring import MonitoringResource
        from planwise_monitoring.defs.signature import resource_signature

        def scd(employees): ...
        seen = resource_signature(scd, AssetExecutionContext, "monitoring", MonitoringResource)
        assert list(seen.signature.parameters) == ["context", "employees", "monitoring"]
        assert not seen.takes_context and not seen.takes_resource
    """

    signature: inspect.Signature
    takes_context: bool  # fn itself declares the context: pass it through
    takes_resource: bool  # fn itself declares the resource parameter: pass it through


def resource_signature(fn: Callable[..., Any], context_type: type, resource_key: str,
                       resource_type: type) -> ResourceSignature:
    """``fn``'s signature with ``context`` first (added, annotated ``context_type``, when fn has
    none) and ``resource_key`` as a keyword-only parameter annotated ``resource_type`` (added
    last when fn does not declare it); a ``**kwargs`` is left out. Everything else is unchanged."""
    try:
        # Resolved annotations: Dagster compares the context annotation by identity, which a
        # string from `from __future__ import annotations` would fail.
        sig = inspect.signature(fn, eval_str=True)
    except Exception:
        sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    takes_context = bool(params) and params[0].name in CONTEXT_NAMES
    takes_resource = resource_key in sig.parameters
    if not takes_context:
        params.insert(0, inspect.Parameter("context", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=context_type))
    # Dagster reads a `**resources: SomeResource` parameter as one resource named "resources";
    # it has nothing to pass a **kwargs anyway, so Dagster does not see it (fn still gets it).
    params = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
    if not takes_resource:
        params.append(inspect.Parameter(resource_key, inspect.Parameter.KEYWORD_ONLY, annotation=resource_type))
    return ResourceSignature(sig.replace(parameters=params), takes_context, takes_resource)
