"""What the history tells: monitoring assets and their schedule, run summaries, named queries.

Every figure is computed once, by the store, and read here.
"""
