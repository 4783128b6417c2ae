"""The structured event log and redaction, today's code against the 0.2 code before the move to
``logging`` (commit 1618cb3: hand-written flock rotation, redact() rescanning the environment),
side by side in one run.

* µs per line of a typical event, one process, rotating every ~1 MB;
* µs per line of an event whose message holds a secret (the redacting slow path);
* wall seconds for 4 processes × N lines into one file (the cross-process lock under contention);
* µs per redact() call on a 200-character error message, with 5 secrets in the environment.

Each figure is the median of interleaved rounds (old, new, old, new, …), so machine load hits both.

    .venv/bin/python benchmarks/event_log.py [--lines 20000] [--rounds 5] [--proc-lines 10000]
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

OLD_COMMIT = "1618cb3"
REPO = Path(__file__).resolve().parent.parent
SECRETS = {f"BENCH_{i}_TOKEN": f"tok-{i}-9f8e7d6c5b4a" for i in range(5)}


def legacy_package(into: Path) -> str:
    """The old events.py and redaction.py as a package ``legacy_planwise`` under ``into``."""
    package = into / "legacy_planwise"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    for module in ("events", "redaction"):
        source = subprocess.run(["git", "-C", str(REPO), "show", f"{OLD_COMMIT}:planwise_monitoring/{module}.py"],
                                capture_output=True, text=True, check=True).stdout
        (package / f"{module}.py").write_text(source)
    return str(into)


def implementation(which: str) -> tuple[Any, Any]:
    """(events module, redaction module) of the old or the new code."""
    prefix = "legacy_planwise" if which == "old" else "planwise_monitoring"
    return importlib.import_module(f"{prefix}.events"), importlib.import_module(f"{prefix}.redaction")


def per_line(which: str, lines: int, message: str) -> float:
    events, _ = implementation(which)
    with tempfile.TemporaryDirectory() as tmp, events.JsonEventLog(
            events.JsonLogConfig(path=f"{tmp}/bench.jsonl", max_bytes=1_000_000, backup_count=1000)) as log:
        start = time.perf_counter()
        for i in range(lines):
            log.event("step_finished", run_id="run-0001", asset="scd_workforce_state", simulation_year=2025,
                      component="SCD", seq=i, duration_seconds=12.5, output_records=1234, message=message)
        return (time.perf_counter() - start) / lines * 1e6


def _writer(legacy_path: str, which: str, path: str, lines: int, start: Any) -> None:
    sys.path.insert(0, legacy_path)
    events, _ = implementation(which)
    start.wait(timeout=120)
    with events.JsonEventLog(events.JsonLogConfig(path=path, max_bytes=1_000_000, backup_count=1000)) as log:
        for i in range(lines):
            log.event("burst", run_id="run-1", asset="fct_yearly_events", seq=i, worker=os.getpid())


def four_processes(legacy_path: str, which: str, lines: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        start = ctx.Barrier(5)
        workers = [ctx.Process(target=_writer, args=(legacy_path, which, f"{tmp}/bench.jsonl", lines, start))
                   for _ in range(4)]
        for worker in workers:
            worker.start()
        start.wait(timeout=120)  # imports done everywhere: time only the writing
        began = time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - began
        events, _ = implementation("new")
        written = len(events.read_events(f"{tmp}/bench.jsonl"))
        assert written == 4 * lines, f"{which}: {written} lines of {4 * lines}"
        return elapsed


def redact_cost(which: str, calls: int = 20_000) -> float:
    _, redaction = implementation(which)
    text = ("DeliveryError: channel 'ops': POST https://hooks.example/services/T000/B000 failed after 3 tries "
            "(timeout 5 s); the server said 502 Bad Gateway. tok-3-9f8e7d6c5b4a was rejected earlier. " * 2)[:200]
    redaction.redact(text)
    start = time.perf_counter()
    for _ in range(calls):
        redaction.redact(text)
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--proc-lines", type=int, default=10_000)
    args = parser.parse_args()
    os.environ.update(SECRETS)
    legacy_path = legacy_package(Path(tempfile.mkdtemp(prefix="legacy-planwise-")))
    sys.path.insert(0, legacy_path)
    # the 0.2 module imports its sibling as ".redaction": both come from the same commit
    assert isinstance(implementation("old")[0], types.ModuleType)

    figures: dict[str, dict[str, list[float]]] = {}
    cases = {
        "µs/line, typical event": lambda w: per_line(w, args.lines, "ok"),
        "µs/line, message holds a secret": lambda w: per_line(w, args.lines // 4, "rejected tok-1-9f8e7d6c5b4a"),
        "µs per redact() of 200 chars": lambda w: redact_cost(w),
        f"s for 4 processes x {args.proc_lines:,} lines": lambda w: four_processes(legacy_path, w, args.proc_lines),
    }
    for name, run in cases.items():
        rounds = args.rounds if "processes" not in name else max(1, args.rounds // 2)
        for _ in range(rounds):
            for which in ("old", "new"):
                figures.setdefault(name, {}).setdefault(which, []).append(run(which))

    print(f"{'':42} {'old (1618cb3)':>14} {'new':>10} {'new/old':>8}")
    for name, by in figures.items():
        old, new = statistics.median(by["old"]), statistics.median(by["new"])
        print(f"{name:42} {old:14.1f} {new:10.1f} {new / old:8.2f}")


if __name__ == "__main__":
    main()
