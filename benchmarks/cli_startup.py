"""How long a read command of ``planwise-monitoring`` takes, whole (a new Python process), next to
bare DuckDB answering the same query in a new process, on a 1 M-row monitoring database.

The history comes from ``benchmarks/query_scale.py``'s generator. Each command runs 10 times as a
subprocess; the table shows the median wall time, and the ratio to ``python -c "import duckdb; ..."``
running the figure's own SQL. Target: each read command at most 0.5 s.

With ``--old-tree DIR`` (a checkout of an earlier commit, e.g. ``git archive 2b06cdb | tar -x -C DIR``)
the same commands also run from that tree, for a before/after column.

    .venv/bin/python benchmarks/cli_startup.py [--rows 1000000] [--runs 10] [--old-tree /tmp/old]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from planwise_monitoring.store.figures import FAILED_RUNS, SLA_COMPLIANCE, TREND, filters, row_limit

TARGET_SECONDS = 0.5
COMPONENT = "component_7"

# command line -> the figure's SQL and parameters, as bare DuckDB would run them
COMMANDS: list[tuple[list[str], str, dict[str, object]]] = [
    (["sla-compliance"], SLA_COMPLIANCE.duckdb or "", filters()),
    (["trend", COMPONENT], TREND.duckdb or "", {**filters(component=COMPONENT), **row_limit(None)}),
    (["failed-runs"], FAILED_RUNS, {**filters(), **row_limit(None)}),
]


def _query_scale():
    spec = importlib.util.spec_from_file_location("query_scale", Path(__file__).with_name("query_scale.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def median_seconds(argv: list[str], runs: int, env: dict[str, str] | None = None, cwd: str | None = None) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--old-tree", type=Path, help="an earlier checkout to time the same commands from")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="planwise-cli-") as tmp:
        path = Path(tmp) / "monitoring.duckdb"
        _query_scale().build_history(path, args.rows)
        print(f"{args.rows:,} rows in {path.stat().st_size / 1e6:,.0f} MB; median of {args.runs} runs, "
              "each a new process")
        header = f"  {'command':<24}{'CLI s':>8}{'bare duckdb s':>15}{'CLI/bare':>10}"
        if args.old_tree:
            header += f"{'old CLI s':>11}{'old/new':>9}"
        print(header)
        verdicts = []
        for command, sql, params in COMMANDS:
            cli = median_seconds([sys.executable, "-m", "planwise_monitoring.cli", "--db", str(path), *command],
                                 args.runs)
            bare_code = (f"import duckdb\nconn = duckdb.connect({str(path)!r}, read_only=True)\n"
                         f"conn.execute({sql!r}, {params!r}).fetchall()")
            bare = median_seconds([sys.executable, "-c", bare_code], args.runs)
            line = f"  {' '.join(command):<24}{cli:>8.3f}{bare:>15.3f}{cli / bare:>10.2f}"
            if args.old_tree:
                env = {**os.environ, "PYTHONPATH": str(args.old_tree)}
                old = median_seconds([sys.executable, "-m", "planwise_monitoring.cli", "--db", str(path), *command],
                                     args.runs, env=env, cwd=str(args.old_tree))
                line += f"{old:>11.3f}{old / cli:>9.2f}"
            print(line)
            verdicts.append((" ".join(command), cli))
        print()
        for command, seconds in verdicts:
            print(f"{'PASS' if seconds <= TARGET_SECONDS else 'MISS'}  {command}: {seconds:.3f} s "
                  f"(target <= {TARGET_SECONDS} s)")


if __name__ == "__main__":
    main()
