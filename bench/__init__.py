"""Throughput benchmark: the raw Kafka client next to each layer carecoord adds.

Run with ``make bench`` (``python -m bench --help`` for the knobs). It starts
its own Kafka and PostgreSQL in ``.local/bench-stack`` on free ports, writes
the results to ``.local/bench-results/`` and prints a table.
"""
