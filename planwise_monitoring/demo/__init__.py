"""The demo: the workforce simulation in ``dbt_project/``, run through Dagster and monitored.

``python -m planwise_monitoring.demo`` (what ``make demo`` runs) simulates 2025-2029 and prints
what the monitoring recorded; ``dagster dev -w workspace.yaml`` shows the same assets in the UI.
"""
