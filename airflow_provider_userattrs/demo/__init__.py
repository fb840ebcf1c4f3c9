"""Demo data for the provider: a deterministic, realistic warehouse to sync from.

The DAGs, the benchmarks and the end-to-end tests need a warehouse that looks like production (skewed
order histories, a few broken rows) yet is identical on every machine, so that a number or a failure seen
once can be reproduced. :mod:`airflow_provider_userattrs.demo.warehouse` builds it into SQLite or PostgreSQL.
"""
