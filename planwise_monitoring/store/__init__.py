"""The monitoring database: schema and migrations, the backend, the spool and the background writer.

The only package that holds SQL on the ``mon_*`` tables.
"""

from .duckdb import MonitoringStore, StoreError, StoreLockedError, StoreSession

__all__ = ["MonitoringStore", "StoreError", "StoreLockedError", "StoreSession"]
