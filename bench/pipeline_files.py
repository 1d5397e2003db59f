"""Pipeline files the benchmarks hand to `forcebeam run` — written exactly as a user would.

The connection is the recommended production shape (JWT bearer, private key by reference,
the emulator's CA as `ca_bundle`), so the benchmark pays the same login and TLS costs a
real deployment pays; nothing secret is inlined.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CONNECTION_NAME = "bench"


def connection_for(info: dict[str, Any]) -> dict[str, Any]:
    """A `connections:` entry for the emulated org described by its info file."""
    app = info["connected_app"]
    return {
        "login_url": info["login_url"],
        "api_version": info["api_version"],
        "ca_bundle": info["ca_cert"],
        "auth": {"type": "jwt_bearer", "username": info["username"],
                 "consumer_key": app["consumer_key"],
                 "private_key": f"file://{app['private_key']}"},
    }


#: Sinks an extract can write: Beam YAML's own (pandas-bound JSON/CSV, batch-aware
#: Parquet) and forcebeam's Arrow-batch JSON lines/CSV sinks.
SINKS = {"json": ("WriteToJson", {}), "parquet": ("WriteToParquet", {}),
         "csv": ("WriteToCsv", {}), "jsonl": ("WriteToJsonLines", {}),
         "csvfiles": ("WriteToCsvFiles", {})}


def extract_pipeline(info: dict[str, Any], fields: list[str], out_prefix: Path,
                     sobject: str = "Account", mode: str = "bulk", sink: str = "json",
                     read_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """ReadFromSalesforce -> a file sink (WriteToJson by default): the extract users run
    most."""
    sink_type, sink_options = SINKS[sink]
    return {
        "connections": {CONNECTION_NAME: connection_for(info)},
        "pipeline": {
            "type": "chain",
            "transforms": [
                {"type": "ReadFromSalesforce", "name": "Extract",
                 "config": {"connection": CONNECTION_NAME, "sobject": sobject,
                            "fields": fields, "mode": mode, **(read_options or {})}},
                {"type": sink_type, "name": "Save",
                 "config": {"path": str(out_prefix), **sink_options}},
            ],
        },
    }


def write_pipeline(info: dict[str, Any], csv_path: Path, dead_letter_prefix: Path,
                   sobject: str = "Account", mode: str = "rest", operation: str = "insert",
                   external_id_field: str | None = None) -> dict[str, Any]:
    """ReadFromCsv -> WriteToSalesforce with rejected rows to a dead-letter file."""
    write_config: dict[str, Any] = {"connection": CONNECTION_NAME, "sobject": sobject,
                                    "operation": operation, "mode": mode,
                                    "error_handling": {"output": "rejected"}}
    if external_id_field:
        write_config["external_id_field"] = external_id_field
    return {
        "connections": {CONNECTION_NAME: connection_for(info)},
        "pipeline": {
            "transforms": [
                {"type": "ReadFromCsv", "name": "Load", "config": {"path": str(csv_path)}},
                {"type": "WriteToSalesforce", "name": "Write", "input": "Load",
                 "config": write_config},
                {"type": "WriteToJson", "name": "DeadLetter", "input": "Write.rejected",
                 "config": {"path": str(dead_letter_prefix)}},
            ],
        },
    }


def save(pipeline: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(pipeline, sort_keys=False))
    return path
