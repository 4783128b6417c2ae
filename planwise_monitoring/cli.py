"""``planwise-monitoring``: the command line over the monitoring database.

    planwise-monitoring alerts list [--status pending] [--limit 50]
    planwise-monitoring alerts ack ALERT_ID        # an id or a unique prefix of one
    planwise-monitoring flush                      # write records waiting in the spool
    planwise-monitoring query "SELECT component_name, count(*) FROM mon_multi_year_performance GROUP BY 1"
    planwise-monitoring sla-compliance --format csv   # also failed-runs, slowest-components, regressions
    planwise-monitoring trend scd_workforce_state --format json
    planwise-monitoring summary RUN_ID [--artifacts artifacts]
    planwise-monitoring prune --older-than 90d     # Nd, Nh or Nw
    planwise-monitoring baseline show [COMPONENT] [--all-versions] [--format json]
    planwise-monitoring baseline update COMPONENT [--runs 20] [--by NAME]   # a new version from the last N runs
    planwise-monitoring baseline rollback COMPONENT [--to VERSION] [--by NAME]

The database is ``--db``, else ``$PLANWISE_MONITORING_DB``, else ``monitoring.duckdb``: a DuckDB
file, or a ``postgresql://user@host:5432/dbname`` URL (``--schema`` for its schema; a password is
best given through ``PGPASSWORD`` or ``~/.pgpass`` and is never printed). Queries are
read-only (one SELECT; anything else is refused) and show at most ``--limit`` rows (10,000).
Errors are one line on stderr with exit status 2, never a traceback. Every timestamp shown is UTC.

The named figures are the store's (:mod:`planwise_monitoring.store.figures`), the same queries the
monitoring assets and run summaries read. The command line imports neither Dagster nor pandas:
a read command answers in about the time DuckDB takes.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path

from .reporting.queries import DEFAULT_LIMIT, NAMED_QUERIES, QueryError, run_named, run_query
from .reporting.run_text import run_summary_text
from .reporting.text_tables import FORMATS, render
from .store import MonitoringStore
from .store.errors import StoreError
from .store.rows import Rows

ALERT_COLUMNS = ["alert_id", "created_at", "status", "severity", "alert_type", "component_name",
                 "simulation_year", "channel", "attempts", "title"]

_DURATION = re.compile(r"(\d+)([hdw])")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """``90d``, ``36h`` or ``2w`` as a timedelta (argparse type: its ValueError becomes a usage error)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"expected a positive age like 90d, 36h or 2w, got {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _day(text: str) -> datetime:
    """A day as ``YYYY-MM-DD`` (UTC, its first moment)."""
    try:
        return datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _limit(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("the limit cannot be negative (0 shows every row)")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of at least 1, got {value}")
    return value


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--limit", type=_limit, default=DEFAULT_LIMIT,
                        help=f"at most this many rows (default {DEFAULT_LIMIT:,}; 0: all)")
    parser.add_argument("--format", choices=FORMATS, default="table")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="planwise-monitoring", description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("PLANWISE_MONITORING_DB", "monitoring.duckdb"),
                        help="monitoring database: a DuckDB file or a postgresql:// URL "
                             "(default: $PLANWISE_MONITORING_DB or monitoring.duckdb)")
    parser.add_argument("--schema", default=os.environ.get("PLANWISE_MONITORING_SCHEMA") or None,
                        help="PostgreSQL schema of the mon_* tables (default: $PLANWISE_MONITORING_SCHEMA, "
                             "else the connection's default)")
    # Long enough to wait out a monitored step's brief write, short enough to say who holds it.
    parser.add_argument("--lock-timeout", type=float, default=5.0, metavar="SECONDS",
                        help="how long to wait for another process's lock on the database (default 5)")
    commands = parser.add_subparsers(dest="command", required=True)
    alerts = commands.add_parser("alerts", help="list or acknowledge alerts").add_subparsers(dest="action", required=True)
    listing = alerts.add_parser("list", help="alerts, newest first")
    listing.add_argument("--status", choices=["pending", "sent", "failed", "suppressed", "acknowledged"])
    listing.add_argument("--limit", type=int, default=50)
    ack = alerts.add_parser("ack", help="acknowledge an alert (all its channels)")
    ack.add_argument("alert_id")
    commands.add_parser("flush", help="write the records waiting in the spool into the database")

    query = commands.add_parser("query", help="run one read-only SELECT over the mon_* tables")
    query.add_argument("sql", help="the query, e.g. \"SHOW TABLES\"; - reads it from stdin")
    _output_options(query)
    for name, (params, help_text) in NAMED_QUERIES.items():
        named = commands.add_parser(name, help=help_text.replace("%", "%%"))  # argparse formats help
        for param in params:
            named.add_argument(param)
        _output_options(named)

    summary = commands.add_parser("summary", help="summary of one run: its summary.txt, else computed")
    summary.add_argument("run_id")
    summary.add_argument("--artifacts", default="artifacts",
                         help="artifacts directory holding runs/RUN_ID/summary.txt (default: artifacts)")
    audit = commands.add_parser("audit", help="the parameter audit trail: verify it, approve a change"
                                ).add_subparsers(dest="action", required=True)
    audit.add_parser("verify", help="check every entry's hash and link; exit 1 naming the first that is not as written")
    report = audit.add_parser("report", help="the changes made in a period, their approvals, the unapproved ones")
    report.add_argument("--from", dest="start", type=_day, required=True, metavar="DATE", help="first day, e.g. 2026-01-01")
    report.add_argument("--to", dest="end", type=_day, required=True, metavar="DATE", help="last day (included)")
    _output_options(report)
    approve = audit.add_parser("approve", help="append an approval of a parameter change")
    approve.add_argument("change_id")
    approve.add_argument("--by", required=True, metavar="NAME", help="who approves it")
    approve.add_argument("--reason", help="why (kept with the approval)")
    baseline = commands.add_parser("baseline", help="performance baselines per component, year and scenario: "
                                   "show, update, roll back").add_subparsers(dest="action", required=True)
    show = baseline.add_parser("show", help="the current baselines (P50/P95/P99, MAD) of a component, or of all")
    show.add_argument("component", nargs="?")
    show.add_argument("--all-versions", action="store_true", help="every version, newest first")
    _output_options(show)
    update = baseline.add_parser("update", help="append a new version computed from the last N successful runs")
    update.add_argument("component")
    update.add_argument("--runs", type=_positive, default=20, metavar="N",
                        help="successful runs per simulation year and scenario, the latest (default 20)")
    update.add_argument("--by", metavar="NAME", help="who computes it (default: the OS user)")
    rollback = baseline.add_parser("rollback", help="append a new version copying an earlier one")
    rollback.add_argument("component")
    rollback.add_argument("--to", dest="to_version", type=_positive, metavar="VERSION",
                          help="the version to copy (default: the one before the current one)")
    rollback.add_argument("--by", metavar="NAME", help="who rolls back (default: the OS user)")
    prune = commands.add_parser("prune", help="delete monitoring history older than an age")
    prune.add_argument("--older-than", type=parse_age, required=True, metavar="AGE",
                       help="e.g. 90d, 36h, 2w; rows inside the window are kept")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        store = MonitoringStore(args.db, lock_timeout_seconds=args.lock_timeout, schema=args.schema)
        if args.command == "flush":
            print(f"{store.replay_spool()} record(s) written to {store.target}")
        elif args.command == "alerts":
            _alerts(store, args)
        elif args.command == "query":
            sql = sys.stdin.read() if args.sql == "-" else args.sql
            _print_rows(run_query(store, sql, args.limit), args.format)
        elif args.command in NAMED_QUERIES:
            params, _ = NAMED_QUERIES[args.command]
            _print_rows(run_named(store, args.command, args.limit, **{p: getattr(args, p) for p in params}),
                        args.format)
        elif args.command == "summary":
            print(_summary(store, args.run_id, Path(args.artifacts)))
        elif args.command == "prune":
            _prune(store, args.older_than)
        elif args.command == "audit":
            return _audit(store, args)
        elif args.command == "baseline":
            _baseline(store, args)
    except (StoreError, QueryError) as exc:
        print(f"planwise-monitoring: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into head: not an error worth a traceback
        sys.stderr.close()
    return 0


def _audit(store: MonitoringStore, args: argparse.Namespace) -> int:
    if args.action == "verify":
        verdict = store.verify_audit()
        print(verdict, file=sys.stdout if verdict.ok else sys.stderr)
        return 0 if verdict.ok else 1
    if args.action == "report":
        _print_rows(store.audit_report(args.start, args.end + timedelta(days=1), args.limit), args.format)
        return 0
    _must_exist(store)
    approval = store.approve_change(args.change_id, by=args.by, reason=args.reason)
    print(f"approval {approval.entry_id} of change {approval.change_id} by {approval.user_name} appended")
    return 0


# What `baseline update` and `rollback` print of the version they appended (`show` prints every column).
_BASELINE_SUMMARY = ("scenario", "simulation_year", "sample_size", "p50_seconds", "p95_seconds", "p99_seconds",
                     "mad_seconds", "p50_peak_memory_mb", "last_run_at")


def _baseline(store: MonitoringStore, args: argparse.Namespace) -> None:
    if args.action == "show":
        _print_rows(store.baselines(args.component, args.all_versions, limit=args.limit), args.format)
        return
    _must_exist(store)
    if args.action == "update":
        version = store.update_baselines(args.component, runs=args.runs, by=args.by)
    else:
        version = store.rollback_baselines(args.component, to_version=args.to_version, by=args.by)
    rows = store.baselines(args.component, version=version)
    method = rows.column("method")[0]
    done = (f"a copy of version {method.removeprefix('rollback:v')}" if method.startswith("rollback:v")
            else f"from the last {args.runs} successful runs of each simulation year and scenario")
    print(f"baseline version {version} of {args.component!r}: {len(rows)} row(s), {done}")
    keep = [rows.columns.index(c) for c in _BASELINE_SUMMARY]
    sys.stdout.write(render(Rows(_BASELINE_SUMMARY, [tuple(row[i] for i in keep) for row in rows.rows]), "table"))


def _alerts(store: MonitoringStore, args: argparse.Namespace) -> None:
    if args.action == "list":
        with store.session(read_only=True) as session:
            rows = session.alerts(args.status, args.limit)
        if not rows:
            print("no alerts")
        else:
            keep = [rows.columns.index(c) for c in ALERT_COLUMNS]
            short = [tuple(str(row[i])[:8] if c == "alert_id" else row[i] for i, c in zip(keep, ALERT_COLUMNS, strict=False))
                     for row in rows.rows]
            sys.stdout.write(render(Rows(tuple(ALERT_COLUMNS), short), "table"))
    else:
        if len(args.alert_id) < 4:
            raise StoreError("give at least 4 characters of the alert id")
        count = store.acknowledge_alert(args.alert_id)
        if not count:
            raise StoreError(f"no unacknowledged alert with id {args.alert_id!r}")
        print(f"acknowledged {count} delivery(ies) of alert {args.alert_id}")


def _print_rows(rows: Rows, fmt: str) -> None:
    sys.stdout.write(render(rows, fmt))
    if rows.truncated:
        # On stderr, so that CSV and JSON on stdout stay parseable.
        print(f"planwise-monitoring: showing first {rows.limit:,} rows; use --limit to see more "
              "(0 for all)", file=sys.stderr)


def _summary(store: MonitoringStore, run_id: str, artifacts: Path) -> str:
    if not run_id or Path(run_id).name != run_id or run_id in (".", ".."):
        raise QueryError(f"not a run id: {run_id!r}")
    written = artifacts / "runs" / run_id / "summary.txt"
    if written.is_file():
        return written.read_text(encoding="utf-8").rstrip("\n")
    return run_summary_text(store, run_id)


def _age(age: timedelta) -> str:
    hours = int(age.total_seconds()) // 3600
    return f"{hours // 24} days" if hours % 24 == 0 else f"{hours} hours"


def _must_exist(store: MonitoringStore) -> None:
    """Before a command that writes to what is there: a write connection would create an empty database."""
    if not store.exists():
        raise StoreError(f"monitoring database {store.target} does not exist yet (nothing was recorded)")


def _prune(store: MonitoringStore, older_than: timedelta) -> None:
    _must_exist(store)
    from .recording.measure import utcnow  # psutil and pydantic: only for the commands that write

    now = utcnow()
    removed = store.prune(older_than, now=now)
    print(f"removed rows older than {_age(older_than)} (before {now - older_than:%Y-%m-%d %H:%M:%S} UTC):")
    width = max(len(t) for t in removed)
    for table, count in removed.items():
        print(f"  {table:<{width}}  {count:>10,}")
    print(f"  {'total':<{width}}  {sum(removed.values()):>10,}")


if __name__ == "__main__":
    sys.exit(main())
