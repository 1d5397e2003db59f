"""What a user gets from `pip install forcebeam`: one namespace, every data file, a core
install a Beam worker can afford, and a wheel that runs the demo away from this checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from forcebeam.pipelines.emulator_env import env_from_info
from tests.support.pipelines import JWT_CONNECTION

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("auth", "stages", "pipelines", "emulator")
GENERIC_NAMES = {"auth", "stages", "pipelines", "emulator", "bench", "tests"}
NOT_ON_WORKERS = {"aiohttp", "lark", "psutil", "pytest"}
TO_DATAFLOW = """\
pipeline:
  transforms:
    - type: ReadFromSalesforce
      config: {connection: org, sobject: Account, fields: [Id]}
    - type: WriteToJson
      input: ReadFromSalesforce
      config: {path: out/accounts}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """`python -m build`: the sdist, and the wheel built from that sdist."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                             str(out), str(REPO)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = out.glob("forcebeam-*.whl")
    (sdist,) = out.glob("forcebeam-*.tar.gz")
    yield wheel, sdist


def _data_files() -> list[Path]:
    """Every non-Python file of the installed folders that git tracks (read at run time)."""
    listed = subprocess.run(["git", "ls-files", *FOLDERS], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.split()
    return [Path(name) for name in listed if not name.endswith(".py")]


def test_the_wheel_installs_one_namespace_and_every_data_file(built):
    wheel, _ = built
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"forcebeam", "forcebeam-0.1.0.dist-info"}, tops
    data = _data_files()
    assert {"emulator/records/soql/soql.lark", "pipelines/providers.yaml",
            "pipelines/examples/demo.yaml"} <= {str(path) for path in data}
    missing = [str(path) for path in data if f"forcebeam/{path}" not in names]
    assert not missing, f"not in the wheel: {missing}"
    entry_points = zipfile.ZipFile(wheel).read("forcebeam-0.1.0.dist-info/entry_points.txt")
    assert b"forcebeam = forcebeam.pipelines.cli:console_main" in entry_points
    assert b"= auth." not in entry_points and b"= stages." not in entry_points


def test_the_sdist_holds_every_data_file(built):
    _, sdist = built
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    missing = [str(path) for path in _data_files() if str(path) not in names]
    assert not missing, f"not in the sdist: {missing}"
    assert "setup.py" in names  # what --setup_file builds on a worker


def _requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read("forcebeam-0.1.0.dist-info/METADATA").decode()
    return [Requirement(line) for line in Parser().parsestr(text).get_all("Requires-Dist")]


def _closure(requirements: list[Requirement], extras: set[str]) -> set[str]:
    """Distribution names a pip install of `requirements` brings (metadata of this venv)."""
    seen: set[str] = set()
    pending = [(req, extras) for req in requirements]
    while pending:
        req, active = pending.pop()
        environments = [{"extra": extra} for extra in active] or [{"extra": ""}]
        if req.marker and not any(req.marker.evaluate(env) for env in environments):
            continue
        name = canonicalize_name(req.name)
        key = f"{name}[{','.join(sorted(req.extras))}]"
        if key in seen:
            continue
        seen.add(key)
        requires = metadata.distribution(name).requires or []
        pending += [(Requirement(line), set(req.extras)) for line in requires]
    return {key.split("[", 1)[0] for key in seen}


def test_the_core_install_is_what_a_worker_needs(built):
    wheel, _ = built
    requirements = _requirements(wheel)
    core = _closure(requirements, set())
    assert {"apache-beam", "simple-salesforce", "pyjwt", "cryptography",
            "google-cloud-secret-manager", "pydantic"} <= core
    assert not core & NOT_ON_WORKERS, core & NOT_ON_WORKERS
    assert {"aiohttp", "lark"} <= _closure(requirements, {"emulator"})
    assert "google-cloud-storage" in _closure(requirements, {"dataflow"})  # apache-beam[gcp]


@pytest.mark.slow
def test_the_wheel_runs_the_demo_in_a_fresh_venv_outside_the_checkout(built, tmp_path, org):
    wheel, _ = built
    venv = tmp_path / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"

    def pip(*args: str) -> None:
        result = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                                 "-c", str(REPO / "constraints.txt"), *args], env=env,
                                cwd=tmp_path, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    pip(str(wheel))  # the core install, as a Dataflow worker gets it
    site = next((venv / "lib").glob("python3*/site-packages"))
    installed = {canonicalize_name(path.name.split("-", 1)[0])
                 for path in site.glob("*.dist-info")}
    assert not installed & NOT_ON_WORKERS, installed & NOT_ON_WORKERS
    tops = {path.name for path in site.iterdir()}
    assert not tops & GENERIC_NAMES, tops & GENERIC_NAMES
    assert (site / "forcebeam" / "pipelines" / "providers.yaml").is_file()
    without_extra = subprocess.run([str(venv / "bin" / "forcebeam"), "demo"], cwd=tmp_path,
                                   env=env, capture_output=True, text=True, timeout=300)
    assert without_extra.returncode == 1
    assert "pip install 'forcebeam[emulator]'" in without_extra.stderr
    to_dataflow = tmp_path / "to_dataflow.yaml"
    to_dataflow.write_text(f"connections:\n  org:\n{JWT_CONNECTION}" + TO_DATAFLOW)
    no_gcp = subprocess.run([str(venv / "bin" / "forcebeam"), "run", str(to_dataflow),
                             "--runner=DataflowRunner", "--project=acme-data",
                             "--region=europe-west1", "--temp_location=gs://acme-df/tmp",
                             "--dry_run"], cwd=tmp_path, env={**env, **env_from_info(org.info)},
                            capture_output=True, text=True, timeout=600)
    assert no_gcp.returncode == 1, no_gcp.stderr[-3000:]
    assert "pip install 'forcebeam[dataflow]'" in no_gcp.stderr

    pip(f"forcebeam[emulator] @ {wheel.as_uri()}")
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    result = subprocess.run([str(venv / "bin" / "forcebeam"), "demo", "--records", "300",
                             "--out", str(workdir / "out")], cwd=workdir, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert list((workdir / "out").glob("accounts*")), list((workdir / "out").iterdir())
    assert "summary" in result.stdout
