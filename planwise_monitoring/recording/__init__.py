"""Measuring a monitored step and the record it produces (measure -> record).

Pure Python and psutil: no Dagster, no database.
"""
