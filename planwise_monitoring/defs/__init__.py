"""The Dagster glue: the resource, the decorator, dbt integration, asset checks and sensors.

Everything that imports Dagster lives here or in reporting.assets.
"""
