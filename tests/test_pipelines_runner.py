"""How `forcebeam run` picks the runner and merges options, and what goes into the job graph:
Beam options pass through untouched (Dataflow's included), local runs never try to download
Prism, and the graph holds secret references, never secret values."""

from __future__ import annotations

import json
import os
import textwrap

import apache_beam as beam
from apache_beam.internal.cloudpickle import cloudpickle
from apache_beam.options.pipeline_options import (
    DirectOptions,
    SetupOptions,
    StandardOptions,
)
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from forcebeam.pipelines import beam_yaml
from forcebeam.pipelines.build import build_options, construct
from forcebeam.pipelines.emulator_env import use_org
from forcebeam.pipelines.run import pick_runner
from forcebeam.pipelines.spec import PipelineSpec
from tests.support.pipelines import forget_org_afterwards  # noqa: F401 - autouse fixture

FILE = """\
connections:
  emulated:
    login_url: ${FORCEBEAM_LOGIN_URL}
    ca_bundle: ${FORCEBEAM_CA_CERT}
    auth:
      type: basic
      username: ${FORCEBEAM_USERNAME}
      password: env://FORCEBEAM_PASSWORD
      security_token: env://FORCEBEAM_SECURITY_TOKEN
pipeline:
  transforms:
    - type: ReadFromSalesforce
      name: ReadAccounts
      config: {connection: emulated, sobject: Account, fields: [Id, Name]}
    - type: WriteToJson
      input: ReadAccounts
      config: {path: out/accounts}
options:
  direct_num_workers: 3
  setup_file: ./from_file.py
"""


def spec_in(tmp_path, text: str = FILE) -> PipelineSpec:
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(text))
    return PipelineSpec.load(str(path), env={"FORCEBEAM_LOGIN_URL": "https://127.0.0.1:1",
                                             "FORCEBEAM_CA_CERT": "/tmp/ca.pem",
                                             "FORCEBEAM_USERNAME": "u@example.com"})


def test_local_runs_use_the_fnapi_runner(tmp_path):
    spec = spec_in(tmp_path)
    for flags in ([], ["--runner=DirectRunner"], ["--runner=FnApiRunner"]):
        assert isinstance(pick_runner(build_options(spec, flags)), FnApiRunner), flags


def test_other_runners_and_their_options_pass_through(tmp_path):
    spec = spec_in(tmp_path)
    options = build_options(spec, ["--runner=DataflowRunner", "--project=acme",
                                   "--region=europe-west1", "--setup_file=./setup.py"])
    assert pick_runner(options) is None  # Beam builds the DataflowRunner itself
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    assert options.view_as(SetupOptions).setup_file == "./setup.py"   # flag beats the file
    assert options.view_as(DirectOptions).direct_num_workers == 3     # file option kept


def test_flags_win_over_file_options(tmp_path):
    options = build_options(spec_in(tmp_path), ["--direct_num_workers=2",
                                                "--direct_running_mode=multi_processing"])
    assert options.view_as(DirectOptions).direct_num_workers == 2
    assert options.view_as(DirectOptions).direct_running_mode == "multi_processing"


def test_job_graph_holds_references_not_secret_values(org, tmp_path, monkeypatch):
    for name, value in use_org(org.info, environ={}).items():  # caches of other orgs gone
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "p.yaml"
    path.write_text(FILE.replace("options:\n  direct_num_workers: 3\n  setup_file: "
                                 "./from_file.py\n", ""))
    spec = PipelineSpec.load(str(path))
    # logs in for describe: the secrets are resolved in this process
    pipeline = construct(spec, beam_yaml.to_beam_spec(spec), build_options(spec, []),
                         FnApiRunner())
    # Beam compresses pickled DoFns in the graph, so pickle each DoFn plainly to look inside.
    dofns: list[object] = []

    class CollectDoFns(beam.pipeline.PipelineVisitor):
        def visit_transform(self, applied):
            if isinstance(applied.transform, beam.ParDo):
                dofns.append(applied.transform.dofn)

    pipeline.visit(CollectDoFns())
    payload = b"".join(cloudpickle.dumps(dofn) for dofn in dofns)
    graph = pipeline.to_runner_api().SerializeToString() + payload
    assert b"env://FORCEBEAM_PASSWORD" in payload                     # the reference travels
    assert org.info["password"].encode() not in graph                 # the value does not
    assert org.info["security_token"].encode() not in graph


INLINE = """\
connections:
  sandbox:
    login_url: ${FORCEBEAM_LOGIN_URL}
    ca_bundle: ${FORCEBEAM_CA_CERT}
    allow_inline_secrets: true
    auth:
      type: basic
      username: ${FORCEBEAM_USERNAME}
      password: "PASSWORD"
      security_token: "TOKEN"
pipeline:
  transforms:
    - type: ReadFromSalesforce
      name: ReadAccounts
      config: {connection: sandbox, sobject: Account, fields: [Id]}
    - type: WriteToJson
      input: ReadAccounts
      config: {path: "OUT/accounts"}
"""


def test_opted_in_inline_secrets_run_locally_without_entering_the_graph(org, tmp_path,
                                                                         monkeypatch, capsys):
    from forcebeam.pipelines.cli import main

    for name, value in use_org(org.info, environ={}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FORCEBEAM_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "inline.yaml"
    path.write_text(INLINE.replace("PASSWORD", org.info["password"])
                    .replace("TOKEN", org.info["security_token"])
                    .replace("OUT", str(tmp_path / "out")))
    monkeypatch.setattr("os.environ", dict(os.environ))  # variables set by the run vanish after
    assert main(["run", str(path)]) == 0, capsys.readouterr().err
    rows = sum(len(p.read_text().splitlines()) for p in (tmp_path / "out").glob("accounts*"))
    assert rows == org.info["records"]

    spec = PipelineSpec.load(str(path))
    carried = json.dumps(beam_yaml.to_beam_spec(spec))  # what the transforms would carry
    assert org.info["password"] not in carried and "env://FORCEBEAM_INLINE_SECRET_" in carried

    # Remote workers cannot see this machine's environment: refused before anything starts.
    assert main(["run", str(path), "--runner=DataflowRunner", "--project=p"]) == 2
    assert "inline secrets work on local runners only" in capsys.readouterr().err
