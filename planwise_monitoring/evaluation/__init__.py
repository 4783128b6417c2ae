"""Judging records: SLA rules and verdicts, regression statistics, the verdicts the checks and sensor share.

Decisions are pure functions; the store supplies the history.
"""
