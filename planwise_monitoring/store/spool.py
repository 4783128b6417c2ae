"""The on-disk spool: where a record waits until the monitoring database takes it.

One JSON file per record, named by its id and written atomically (write, then rename), so any
number of processes can add and drain records without coordinating, and replaying a file twice
inserts nothing twice (the store ignores ids it already has).

    from planwise_monitoring.store.spool import Spool

    spool = Spool(tmp_path / "monitoring.duckdb.spool")
    spool.put("0f9c…", '{"…": 1}')
    [(path, text)] = spool.pending()
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("planwise_monitoring")


class Spool:
    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def put(self, record_id: str, payload: str) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"{record_id}.json"
        tmp = self.directory / f".{record_id}.{os.getpid()}.tmp"
        tmp.write_text(payload)
        os.replace(tmp, final)
        return final

    def pending(self, limit: int | None = None) -> list[tuple[Path, str]]:
        """Spooled payloads, oldest first. Files that vanish meanwhile (another process replayed
        them) are skipped."""
        try:
            entries = [e for e in os.scandir(self.directory) if e.name.endswith(".json") and e.is_file()]
        except FileNotFoundError:
            return []
        entries.sort(key=lambda e: (e.stat().st_mtime_ns, e.name))
        out = []
        for entry in entries[:limit]:
            with contextlib.suppress(FileNotFoundError):
                out.append((Path(entry.path), Path(entry.path).read_text()))
        return out

    def count(self) -> int:
        try:
            return sum(1 for e in os.scandir(self.directory) if e.name.endswith(".json"))
        except FileNotFoundError:
            return 0

    def remove(self, paths: Iterable[Path]) -> None:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def quarantine(self, path: Path, reason: str) -> None:
        """Keep a payload that cannot be read back beside the spool, never delete it."""
        target = path.with_suffix(".bad")
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, target)
            log.warning("planwise-monitoring: spooled record %s cannot be replayed (%s); kept as %s",
                        path.name, reason, target)
