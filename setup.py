"""forcebeam: Apache Beam pipeline stages for Salesforce.

The folders at the top of the repository (`auth/`, `stages/`, `pipelines/`, `emulator/`) are
installed as one namespace, `forcebeam.auth`, `forcebeam.stages`, `forcebeam.pipelines` and
`forcebeam.emulator`, so nothing generic lands at the top of a user's site-packages or a
Dataflow worker's (a Beam project very often has a `pipelines/` package of its own).

This file is also what Beam ships to remote workers (``--setup_file ./setup.py``), so it
declares runtime dependencies loosely; exact pins of every extra live in ``constraints.txt``.
"""

from setuptools import find_packages, setup

NAMESPACE = "forcebeam"
# Folder in this repository -> the subpackage of `forcebeam` it installs as.
FOLDERS = ("auth", "stages", "pipelines", "emulator")


def namespaced_packages() -> tuple[list[str], dict[str, str]]:
    """Every package under FOLDERS, named inside the namespace, and where each one lives."""
    packages: list[str] = []
    package_dir: dict[str, str] = {}
    for folder in FOLDERS:
        package_dir[f"{NAMESPACE}.{folder}"] = folder
        packages.append(f"{NAMESPACE}.{folder}")
        packages += [f"{NAMESPACE}.{folder}.{sub}" for sub in find_packages(where=folder)]
    return packages, package_dir


PACKAGES, PACKAGE_DIR = namespaced_packages()

setup(
    name="forcebeam",
    version="0.1.0",
    description="Apache Beam source and sink stages for Salesforce, with a local emulated org",
    python_requires=">=3.10",
    packages=PACKAGES,
    package_dir=PACKAGE_DIR,
    # Every non-Python file read at run time; tests/test_distribution.py checks the wheel
    # and the sdist for each of them.
    package_data={
        "forcebeam.pipelines": ["providers.yaml", "examples/*.yaml", "examples/*.csv"],
        "forcebeam.emulator.records.soql": ["*.lark"],
    },
    include_package_data=False,
    # What a worker needs, nothing more: the emulator's server stack and the test tools are
    # extras, so a Dataflow worker does not install them.
    install_requires=[
        "apache-beam[yaml]>=2.77.0,<3",
        "simple-salesforce>=1.12.10,<2",
        "pyjwt[crypto]>=2.8,<3",
        "cryptography>=42,<51",
        "google-cloud-secret-manager>=2.20,<3",
        "google-auth>=2.30,<3",  # token_exchange: the worker's Google ID token
        "google-crc32c>=1.5,<2",
        "pydantic>=2.6,<3",
    ],
    extras_require={
        # The local emulated org (`forcebeam emulator`, `forcebeam demo`).
        "emulator": ["aiohttp>=3.9,<4", "isal>=1.6,<2", "lark>=1.1,<2"],
        # Building and running jobs on Google Cloud Dataflow.
        "dataflow": ["apache-beam[gcp]>=2.77.0,<3"],
        # Tests, benchmarks, lint, building the distribution.
        "dev": ["pytest>=8", "pytest-timeout>=2.3", "pytest-xdist>=3.5", "ruff>=0.5",
                "build>=1.2", "psutil>=5.9"],
    },
    entry_points={
        "console_scripts": ["forcebeam = forcebeam.pipelines.cli:console_main"],
        # Stages, auth flows and secret providers are plugins; ours register like anyone's.
        "forcebeam.stages": [
            "ReadFromSalesforce = forcebeam.stages.salesforce.read:ReadFromSalesforce",
            "WriteToSalesforce = forcebeam.stages.salesforce.write:WriteToSalesforce",
            "ReplicateSalesforce = forcebeam.stages.salesforce.replicate:ReplicateSalesforce",
        ],
        # Their config models, read by validation without importing the stages (and Beam).
        "forcebeam.stage_configs": [
            "ReadFromSalesforce = forcebeam.stages.salesforce.config:ReadConfig",
            "WriteToSalesforce = forcebeam.stages.salesforce.config:WriteConfig",
            "ReplicateSalesforce = "
            "forcebeam.stages.salesforce.replicate_config:ReplicateConfig",
        ],
        "forcebeam.auth_flows": [
            "jwt_bearer = forcebeam.auth.flows.jwt_bearer:JwtBearerCredentials",
            "client_credentials = forcebeam.auth.flows.client_credentials:ClientCredentials",
            "refresh_token = forcebeam.auth.flows.refresh_token:RefreshTokenCredentials",
            "password = forcebeam.auth.flows.password:PasswordCredentials",
            "basic = forcebeam.auth.flows.soap_login:SoapLoginCredentials",
            "access_token = forcebeam.auth.flows.access_token:AccessTokenCredentials",
            "token_exchange = forcebeam.auth.flows.token_exchange:TokenExchangeCredentials",
        ],
        # Where a token_exchange connection gets the token it exchanges.
        "forcebeam.subject_tokens": [
            "google-id-token = forcebeam.auth.subject_tokens:GoogleIdTokenSource",
        ],
        "forcebeam.secret_providers": [
            "gcp-sm = forcebeam.auth.secrets.gcp_secret_manager:GcpSecretManagerProvider",
            "env = forcebeam.auth.secrets.env:EnvProvider",
            "file = forcebeam.auth.secrets.file:FileProvider",
        ],
    },
)
