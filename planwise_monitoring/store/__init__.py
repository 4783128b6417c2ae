"""The monitoring database: schema and migrations, the backend, the figures, the spool and the writer.

The only package that holds SQL on the ``mon_*`` tables: ``schema`` (DDL, migrations, the
``mon_steps`` view every figure reads), ``duckdb`` (the backend: connecting, writing, replaying the
spool, pruning), ``session`` (the queries of sensors, checks and alerting), ``figures`` (one query
per reported figure), ``performance`` (inserting records), ``sla_definitions`` (mirroring SLA rows).
"""

from .duckdb import MonitoringStore
from .errors import StoreError, StoreLockedError
from .session import StoreSession

__all__ = ["MonitoringStore", "StoreError", "StoreLockedError", "StoreSession"]
