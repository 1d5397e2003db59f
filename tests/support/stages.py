"""Helpers for the stage and fault tests: the connection users write, pipeline runs, and
the rows a read must produce (from the org's truth, ``tests.support.truth``)."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from tests.support.org import EmulatedOrg
from tests.support.truth import describe, rest_records

FNAPI = ["--runner=FnApiRunner"]


def connection_mapping(org: EmulatedOrg, *, consumer_key: str | None = None,
                       max_api_usage: str | None = None) -> dict[str, Any]:
    """The YAML-shaped connection users write: JWT bearer, key by file reference, the CA."""
    app = org.info["connected_app"]
    mapping: dict[str, Any] = {
        "login_url": org.info["login_url"],
        "api_version": org.info["api_version"],
        "ca_bundle": org.ca_cert,
        "auth": {"type": "jwt_bearer", "username": org.info["username"],
                 "consumer_key": consumer_key or app["consumer_key"],
                 "private_key": f"file://{app['private_key']}"},
    }
    if max_api_usage is not None:
        mapping["max_api_usage"] = max_api_usage
    return mapping


def watched_client(org: EmulatedOrg, seen: Callable[[str, str, dict[str, Any]], None]) -> Any:
    """The process's real API client for ``org`` (the one stages in this process share),
    showing every request's method, path and arguments to ``seen`` before sending it (what
    a test observes; nothing is changed)."""
    from forcebeam.auth import Connection, get_client

    client = get_client(Connection.from_mapping(connection_mapping(org)))
    send = client.request

    def watched(method, path, *args, **kwargs):
        seen(method, path, kwargs)
        return send(method, path, *args, **kwargs)

    client.request = watched
    return client


def result_files_fetched(org: EmulatedOrg) -> tuple[Any, list[str]]:
    """``watched_client`` and the Bulk ingest result files it downloads, by name
    (``successfulResults``, ``failedResults``), filled in as they are fetched."""
    fetched: list[str] = []

    def seen(_: str, path: str, __: dict[str, Any]) -> None:
        if "Results" in path:
            fetched.append(path.rstrip("/").rsplit("/", 1)[-1])

    return watched_client(org, seen), fetched


def rows_as_dicts(rows: Iterable[Any]) -> list[dict[str, Any]]:
    return [row._asdict() if hasattr(row, "_asdict") else dict(row) for row in rows]


def run_collect(transform_factory, options: list[str] | None = None,
                out: Path | None = None) -> tuple[list[dict[str, Any]], Any]:
    """Run ``p | transform`` and return its rows (through a pickled JSON file) + result."""
    import pickle

    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    assert out is not None
    out.mkdir(parents=True, exist_ok=True)
    pipeline = beam.Pipeline(options=PipelineOptions(options or FNAPI))
    _ = (pipeline | "Read" >> transform_factory()
         | "AsDict" >> beam.Map(lambda r: r._asdict())
         | "Pickle" >> beam.Map(lambda d: pickle.dumps(d).hex())
         | "Save" >> beam.io.WriteToText(str(out / "rows")))
    result = pipeline.run()
    result.wait_until_finish()
    rows = []
    for shard in sorted(out.glob("rows*")):
        rows += [pickle.loads(bytes.fromhex(line)) for line in shard.read_text().split()]  # noqa: S301
    return rows, result


def expected_value(sf_type: str, truth: Any, scale: int = 0) -> Any:
    """What a *portable* row must hold for a REST JSON value (written independently)."""
    if truth is None or truth == "":
        return None            # Salesforce does not store empty text: "" and null are one
    if sf_type == "currency":
        return f"{decimal.Decimal(str(truth)):.{scale}f}"
    if sf_type in ("int", "long"):
        return int(truth)
    if sf_type in ("double", "percent"):
        return float(truth)
    if sf_type == "datetime":
        parsed = dt.datetime.strptime(truth, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(dt.timezone.utc)
        return parsed.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if sf_type == "boolean":
        return bool(truth)
    return str(truth) if not isinstance(truth, str) else truth


def expected_rows(org: EmulatedOrg, fields: list[str], soql_where: str = "",
                  include_deleted: bool = False) -> dict[str, dict[str, Any]]:
    """Id -> the portable row the stage must produce, from the org's REST truth."""
    types = {f["name"]: (f["type"] if not f.get("calculated") else "formula", f.get("scale") or 0)
             for f in describe(org)["fields"]}
    soql = f"SELECT {', '.join(fields)} FROM Account {soql_where}"  # noqa: S608 - SOQL
    truth = rest_records(org, soql, include_deleted=include_deleted)
    return {r["Id"]: {f: expected_value(types[f][0], r.get(f), types[f][1]) for f in fields}
            for r in truth}


def by_id(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        assert row["Id"] not in out, f"Id {row['Id']} read twice"
        out[row["Id"]] = dict(row)
    return out
