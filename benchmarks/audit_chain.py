"""The parameter audit trail's ``verify_chain`` at 1 M entries, on DuckDB and on PostgreSQL 15 (a
server this script starts), today's code against the code before (commit 97aad82: each row read
as driver objects, UUID and datetime included, and its canonical JSON made by ``json.dumps`` with a
default hook).

1. ``load_audit_rows``: a trail of n valid chained entries, computed in Python (a change and, every
   fourth entry, an approval of the change before it; some values NULL, some texts with quotes,
   newlines and non-ASCII letters, some times on a whole second) and bulk-inserted: DuckDB from a
   pandas DataFrame, PostgreSQL by COPY. Its hashes are canonical()'s (spot-checked against
   :func:`planwise_monitoring.store.audit.row_hash`); the code before verifies them too.
2. ``verify_chain`` over it on a read-only connection, as ``audit verify`` runs it: the median of
   3 runs (the code before: one run), against the target of 5 s per 1 M entries on a 2-core machine.
   A 1 M trail is ~6 % entries with a newline in a text, ~8 % with quotes and non-ASCII letters.

    .venv/bin/python benchmarks/audit_chain.py [--rows 1000000] [--skip-duckdb] [--skip-postgres] [--skip-old]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from planwise_monitoring.store import MonitoringStore  # noqa: E402
from planwise_monitoring.store.audit import APPROVAL, CHANGE, COLUMNS, GENESIS, row_hash, verify_chain  # noqa: E402

OLD_COMMIT = "97aad82"
TARGET_SECONDS = 5.0  # per 1 M entries
RUNS = 3
T0 = datetime(2026, 1, 5, 8, 0, 0, 250_000)
SOURCES = ("optimization", "manual", "import")
USERS = ("ana", "bob", "controller", "Zoë Ångström")


# canonical()'s encoder, for values that are all JSON's own already (times and ids as their text)
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def trail_rows(n: int, first_seq: int = 1, prev: str = GENESIS) -> list[list[Any]]:
    """n valid chained rows (in ``COLUMNS`` order, times and ids as text) after entry ``first_seq - 1``
    whose hash is ``prev``. Hashed as canonical() hashes them: the json module renders a time's and
    an id's text as its default hook does (and the first row of each call is checked against
    ``row_hash`` itself)."""
    rows: list[list[Any]] = []
    last_change = ""
    sha256 = hashlib.sha256
    for k in range(n):
        seq = first_seq + k
        h = f"{(seq * 0x9E3779B97F4A7C15F39CC0605CEDC835 + 0x1234) % (1 << 128):032x}"
        entry_id = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"
        # every 7th entry on a whole second: isoformat gives ".000000" there too
        at = (T0 + timedelta(seconds=seq * 3, microseconds=0 if seq % 7 == 0 else (seq * 7919) % 1_000_000)
              ).isoformat(timespec="microseconds")
        user = USERS[seq % len(USERS)]
        if seq % 4 == 0 and last_change:
            values: list[Any] = [entry_id, APPROVAL, last_change, at, None, None, user, None, None, None, None,
                                 None, None, None, "reviewed" if seq % 8 else None]
        else:
            last_change = entry_id
            values = [entry_id, CHANGE, entry_id, at, f"calibration-{seq // 1000}",
                      None if seq % 5 == 0 else f"run-{seq // 100:06d}", user, f"merit_rate_level_{seq % 5}",
                      seq % 5 + 1, 2025 + seq % 3, None if seq % 11 == 0 else 0.03 + seq / 1e9,
                      0.031 + seq / 1e9, SOURCES[seq % 3], 0.1 + 0.2 if seq % 2 else None,
                      f'step {seq}: "tuned" €\nline 2' if seq % 13 == 0 else f"calibration step {seq}"]
        digest = sha256(_ENCODE([seq, *values, prev]).encode()).hexdigest()
        if k == 0:
            as_written = [uuid.UUID(v) if i in (0, 2) else datetime.fromisoformat(v) if i == 3 else v
                          for i, v in enumerate(values)]
            assert row_hash(seq, as_written, prev) == digest
        rows.append([seq, *values, prev, digest])
        prev = digest
    return rows


def load_audit_rows(conn_or_store: Any, n: int) -> None:
    """Append n valid chained entries to the trail of ``conn_or_store`` (a MonitoringStore, or one of
    its write connections, whose transaction the caller then commits) after its last entry, in bulk:
    DuckDB from a pandas DataFrame, PostgreSQL by COPY (its trigger refuses only UPDATE, DELETE and
    TRUNCATE)."""
    if isinstance(conn_or_store, MonitoringStore):
        with conn_or_store.connect() as conn:
            conn.begin()
            try:
                load_audit_rows(conn, n)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        return
    conn = conn_or_store
    tail = conn.execute("SELECT entry_seq, row_hash FROM mon_parameter_changes ORDER BY entry_seq DESC LIMIT 1"
                        ).fetchone()
    first, prev = (int(tail[0]) + 1, str(tail[1])) if tail else (1, GENESIS)
    step = 200_000
    for start in range(0, n, step):
        rows = trail_rows(min(step, n - start), first + start, prev)
        prev = rows[-1][-1]
        if conn.dialect == "duckdb":
            import pandas as pd

            frame = pd.DataFrame(rows, columns=COLUMNS)
            for column in ("job_level", "fiscal_year"):
                frame[column] = frame[column].astype("Int64")
            conn.raw.register("audit_rows", frame)
            conn.raw.execute(f"INSERT INTO mon_parameter_changes ({', '.join(COLUMNS)}) "
                             f"SELECT {', '.join(COLUMNS)} FROM audit_rows")
            conn.raw.unregister("audit_rows")
        else:
            with conn.raw.cursor().copy(f"COPY mon_parameter_changes ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)


def legacy_audit(into: Path) -> types.ModuleType:
    """The audit module of commit OLD_COMMIT, as ``legacy_audit`` (its verify_chain needs nothing else)."""
    source = subprocess.run(["git", "show", f"{OLD_COMMIT}:planwise_monitoring/store/audit.py"], cwd=REPO,
                            check=True, capture_output=True, text=True).stdout
    path = into / "legacy_audit.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("legacy_audit", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["legacy_audit"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def timed(store: MonitoringStore, verify: Callable[[Any], Any], rows: int, runs: int = RUNS) -> float:
    """The median seconds of ``verify`` over the trail (on a read-only connection, as ``audit verify``)."""
    took = []
    for _ in range(runs):
        with store.connect(read_only=True) as conn:
            started = time.perf_counter()
            verdict = verify(conn)
            took.append(time.perf_counter() - started)
        assert verdict.ok and verdict.rows == rows, str(verdict)
    return statistics.median(took)


def measure(name: str, store: MonitoringStore, rows: int, legacy: types.ModuleType | None) -> list[tuple]:
    started = time.perf_counter()
    load_audit_rows(store, rows)
    loaded = time.perf_counter() - started
    print(f"{name}: {rows:,} entries loaded in {loaded:.1f} s", flush=True)
    target = TARGET_SECONDS * rows / 1_000_000
    out = []
    if legacy is not None:
        out.append((name, "before", rows, timed(store, legacy.verify_chain, rows, runs=1), target))
        print(f"  verify_chain before: {out[-1][3]:.2f} s", flush=True)
    out.append((name, "after", rows, timed(store, verify_chain, rows), target))
    print(f"  verify_chain after:  {out[-1][3]:.2f} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-duckdb", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-old", action="store_true", help="only today's verify_chain")
    args = parser.parse_args()
    results: list[tuple] = []
    with tempfile.TemporaryDirectory(prefix="audit-chain-") as tmp:
        legacy = None if args.skip_old else legacy_audit(Path(tmp))
        if not args.skip_duckdb:
            results += measure("duckdb", MonitoringStore(Path(tmp) / "audit.duckdb"), args.rows, legacy)
        if not args.skip_postgres:
            from store_backends import start_postgres  # type: ignore[import-not-found]

            server = start_postgres({})
            try:
                store = MonitoringStore(server.create_database("audit_chain"), lock_timeout_seconds=10.0)
                results += measure("postgres", store, args.rows, legacy)
            finally:
                server.stop()
    print(f"\n{'backend':<10}{'code':<8}{'entries':>12}{'verify s':>10}{'target s':>10}  verdict")
    for name, code, rows, seconds, target in results:
        print(f"{name:<10}{code:<8}{rows:>12,}{seconds:>10.2f}{target:>10.1f}  "
              f"{'meets' if seconds <= target else 'misses'}")


if __name__ == "__main__":
    main()
