"""``planwise-monitoring``: the command line over the monitoring database.

    planwise-monitoring alerts list [--status pending] [--limit 50]
    planwise-monitoring alerts ack ALERT_ID        # an id or a unique prefix of one
    planwise-monitoring flush                      # write records waiting in the spool

The database is ``--db``, else ``$PLANWISE_MONITORING_DB``, else ``monitoring.duckdb``. Errors are
one line on stderr with exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

import pandas as pd

from .store import MonitoringStore, StoreError

ALERT_COLUMNS = ["alert_id", "created_at", "status", "severity", "alert_type", "component_name",
                 "simulation_year", "channel", "attempts", "title"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="planwise-monitoring", description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("PLANWISE_MONITORING_DB", "monitoring.duckdb"),
                        help="monitoring database (default: $PLANWISE_MONITORING_DB or monitoring.duckdb)")
    commands = parser.add_subparsers(dest="command", required=True)
    alerts = commands.add_parser("alerts", help="list or acknowledge alerts").add_subparsers(dest="action", required=True)
    listing = alerts.add_parser("list", help="alerts, newest first")
    listing.add_argument("--status", choices=["pending", "sent", "failed", "suppressed", "acknowledged"])
    listing.add_argument("--limit", type=int, default=50)
    ack = alerts.add_parser("ack", help="acknowledge an alert (all its channels)")
    ack.add_argument("alert_id")
    commands.add_parser("flush", help="write the records waiting in the spool into the database")
    args = parser.parse_args(argv)

    store = MonitoringStore(args.db, lock_timeout_seconds=5.0)
    try:
        if args.command == "flush":
            print(f"{store.replay_spool()} record(s) written to {args.db}")
        elif args.action == "list":
            df = store.alerts(args.status, args.limit)
            if df.empty:
                print("no alerts")
            else:
                df["alert_id"] = df["alert_id"].astype(str).str[:8]
                with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 60):
                    print(df[ALERT_COLUMNS].to_string(index=False))
        else:
            if len(args.alert_id) < 4:
                raise StoreError("give at least 4 characters of the alert id")
            count = store.acknowledge_alert(args.alert_id)
            if not count:
                raise StoreError(f"no unacknowledged alert with id {args.alert_id!r}")
            print(f"acknowledged {count} delivery(ies) of alert {args.alert_id}")
    except StoreError as exc:
        print(f"planwise-monitoring: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
