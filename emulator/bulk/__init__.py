"""Bulk API state for the emulated org: jobs, result files, ingest processing.

Bulk API 2.0: `jobs` holds job state and the runner, `results` renders and pages query
result files, `query`/`ingest` do the work of each job kind; the HTTP side lives in
`emulator.wire.bulk_query` and `emulator.wire.bulk_ingest`.

Bulk API 1.0 lives beside it: `v1_jobs` (jobs, batches, runner), `v1_query` (query batches,
PK chunking), `v1_ingest` and `v1_data` (batch data and result files in CSV/JSON/XML); its
HTTP side is `emulator.wire.bulk_v1`.
"""
