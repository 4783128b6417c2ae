"""The spool and the record parser, today's code against the code before the hardening (commit
4da2ef3: ``json.loads`` plus field fixing, text spool files, no fallback or clean-up), side by side.

* µs per ``PerformanceRecord.from_json`` of a typical record with two phases (strict pydantic
  validation now, json.loads + datetime.fromisoformat before);
* µs per ``Spool.put`` of one record (the monitored step's only cost: it is on the step's path);
* ms per ``Spool.pending()`` over N spooled files (what every replay reads first);
* µs per ``storable(record)`` (new: run on every submit, before the record is spooled).

Each figure is the median of interleaved rounds (old, new, old, new, …), so machine load hits both.

    .venv/bin/python benchmarks/spool_records.py [--records 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

OLD_COMMIT = "4da2ef3"
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from planwise_monitoring.recording.measure import PhaseTiming  # noqa: E402
from planwise_monitoring.recording.records import PerformanceRecord, storable  # noqa: E402
from planwise_monitoring.store.spool import Spool  # noqa: E402
from planwise_monitoring_tests.factories import make_record  # noqa: E402


def legacy_package(into: Path) -> types.ModuleType:
    """The old recording/measure.py, recording/records.py and store/spool.py as ``legacy_spool``."""
    package = into / "legacy_spool"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    for path in ("recording/measure.py", "recording/records.py", "store/spool.py"):
        source = subprocess.run(["git", "show", f"{OLD_COMMIT}:planwise_monitoring/{path}"], cwd=REPO,
                                check=True, capture_output=True, text=True).stdout
        (package / Path(path).name).write_text(source)
    sys.path.insert(0, str(into))
    return importlib.import_module("legacy_spool")


def per_call_us(fn: Callable[[], object], calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-spool-"))
    legacy_package(work)
    old_records = importlib.import_module("legacy_spool.records")
    old_spool = importlib.import_module("legacy_spool.spool")

    t = datetime(2026, 1, 1)
    record = make_record(phases=(PhaseTiming("load", t, 1.5), PhaseTiming("write", t, 0.5)))
    text = record.to_json()
    assert PerformanceRecord.from_json(text) == record
    payloads = [make_record().to_json() for _ in range(args.records)]

    figures: dict[str, tuple[list[float], list[float]]] = {
        "from_json, µs per record": ([], []),
        "Spool.put, µs per record": ([], []),
        f"Spool.pending, ms for {args.records} files": ([], []),
        "storable(record), µs (new only)": ([], []),
    }
    for round_ in range(args.rounds):
        for old, side in ((True, 0), (False, 1)):
            parse = old_records.PerformanceRecord.from_json if old else PerformanceRecord.from_json
            figures["from_json, µs per record"][side].append(per_call_us(lambda p=parse: p(text), 20_000))
            directory = work / f"spool-{round_}-{'old' if old else 'new'}"
            spool = old_spool.Spool(directory) if old else Spool(directory)
            spool.put("warm-up", payloads[0])
            items = iter([(str(uuid.uuid4()), p) for p in payloads])
            figures["Spool.put, µs per record"][side].append(
                per_call_us(lambda s=spool, i=items: s.put(*next(i)), len(payloads)))
            t0 = time.perf_counter()
            spool.pending()
            figures[f"Spool.pending, ms for {args.records} files"][side].append((time.perf_counter() - t0) * 1e3)
            if not old:
                figures["storable(record), µs (new only)"][side].append(per_call_us(lambda: storable(record), 20_000))

    print(f"{'figure':<34} {'before':>10} {'now':>10} {'now/before':>11}")
    for name, (before, now) in figures.items():
        b = statistics.median(before) if before else float("nan")
        n = statistics.median(now)
        print(f"{name:<34} {b:>10.2f} {n:>10.2f} {n / b if before else float('nan'):>11.2f}")


if __name__ == "__main__":
    main()
