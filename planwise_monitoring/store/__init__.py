"""The monitoring database: one interface, two backends, the schema, the figures, the spool and the writer.

The only package that holds SQL on the ``mon_*`` tables: ``base`` (the store every caller uses:
writing, replaying the spool, reading, pruning), ``duckdb`` and ``postgres`` (the backends: how
to connect and what each dialect needs), ``schema`` (DDL and migrations for both, the
``mon_steps`` view every figure reads), ``session`` (the queries of sensors, checks and
alerting), ``figures`` (one query per reported figure), ``performance`` (inserting records),
``sla_definitions`` (mirroring SLA rows), ``baselines`` (versioned performance baselines),
``spool`` and ``writer`` (getting records in without making a step wait).

    store = MonitoringStore("monitoring.duckdb")                      # one machine
    store = MonitoringStore("postgresql://app@db:5432/monitoring")    # many
"""

from .base import MonitoringStore, is_postgres_url
from .errors import QueryError, StoreError, StoreLockedError
from .session import StoreSession

__all__ = ["MonitoringStore", "QueryError", "StoreError", "StoreLockedError", "StoreSession", "is_postgres_url"]
