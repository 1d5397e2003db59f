"""Bulk API 2.0 state for the emulated org: jobs, result files, ingest processing.

`jobs` holds job state and the runner, `results` renders and pages query result files,
`query`/`ingest` do the work of each job kind; the HTTP side lives in
`emulator.wire.bulk_query` and `emulator.wire.bulk_ingest`.
"""
