"""What a stored step stands for: the facts every figure is built from, defined once.

    from planwise_monitoring.store.facts import STEP_FACTS

    f"SELECT *, {STEP_FACTS} FROM mon_multi_year_performance"   # the mon_steps view (see .schema)

The view ``mon_steps`` adds them to every stored row; PostgreSQL's summary tables (see
:mod:`.rollups`) count them over the rows a write inserts, which no view can see yet.
"""

STEP_FACTS = """CAST(execution_end_time AS DATE) AS performance_date,
               status = 'SUCCESS' AS succeeded,
               status = 'FAILED' AS failed,
               sla_status IS NOT NULL AS judged,
               coalesce(sla_status IN ('WITHIN_SLA', 'SLA_WARNING'), false) AS met_sla,
               coalesce(sla_status = 'SLA_BREACH', false) AS breached"""
