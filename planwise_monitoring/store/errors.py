"""What can go wrong with the monitoring database, as exceptions every backend raises alike.

    from planwise_monitoring.store.errors import StoreError

    try:
        store.read_performance()
    except StoreError as exc:   # StoreLockedError is one
        print(f"planwise-monitoring: {exc}")
"""

from __future__ import annotations

from pathlib import Path


class StoreError(RuntimeError):
    """The monitoring database cannot be used; the message says why.

        from planwise_monitoring.store import StoreError
        assert issubclass(StoreError, RuntimeError)
    """


class StoreLockedError(StoreError):
    """Another process held the monitoring database's lock for longer than we wait.

        err = StoreLockedError(Path("m.duckdb"), 1.0, holder_pid=42, holder="python")
        assert "locked by process 42 (python)" in str(err) and err.holder_pid == 42
    """

    def __init__(self, path: Path | str, waited: float, *, holder_pid: int | None = None, holder: str | None = None):
        self.holder_pid = holder_pid
        who = f"process {holder_pid} ({holder})" if holder_pid is not None else "another process"
        super().__init__(f"monitoring database {path} is locked by {who}; gave up after {waited:.1f}s")


class QueryError(ValueError):
    """A user's SQL was refused or failed; the message says why (one line, the database's own words).

        assert issubclass(QueryError, ValueError)
    """
