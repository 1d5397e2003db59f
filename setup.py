"""forcebeam: Apache Beam pipeline stages for Salesforce.

This file is also what Beam ships to remote workers (``--setup_file ./setup.py``), so it
declares runtime dependencies only loosely; exact pins live in ``constraints.txt``.
"""

from setuptools import find_packages, setup

setup(
    name="forcebeam",
    version="0.1.0",
    description="Apache Beam source and sink stages for Salesforce, with a local emulated org",
    python_requires=">=3.10",
    packages=find_packages(include=["auth", "auth.*", "stages", "stages.*", "pipelines",
                                    "pipelines.*", "emulator", "emulator.*"]),
    package_data={"pipelines": ["providers.yaml", "examples/*.yaml", "examples/*.csv"],
                  "emulator": ["*.lark", "static/*"]},
    install_requires=[
        "apache-beam[yaml]>=2.77.0,<3",
        "simple-salesforce>=1.12.10,<2",
        "pyjwt[crypto]>=2.8,<3",
        "cryptography>=42,<51",
        "google-cloud-secret-manager>=2.20,<3",
        "google-crc32c>=1.5,<2",
        "aiohttp>=3.9,<4",
        "lark>=1.1,<2",
        "pydantic>=2.6,<3",
        "psutil>=5.9",
    ],
    extras_require={"dev": ["pytest>=8", "pytest-timeout>=2.3", "pytest-xdist>=3.5", "ruff>=0.5"]},
    entry_points={
        "console_scripts": ["forcebeam = pipelines.cli:main"],
        # Stages, auth flows and secret providers are plugins; ours register like anyone's.
        "forcebeam.stages": [
            "ReadFromSalesforce = stages.salesforce.read:ReadFromSalesforce",
            "WriteToSalesforce = stages.salesforce.write:WriteToSalesforce",
        ],
        "forcebeam.auth_flows": [
            "jwt_bearer = auth.flows.jwt_bearer:JwtBearerCredentials",
            "client_credentials = auth.flows.client_credentials:ClientCredentials",
            "refresh_token = auth.flows.refresh_token:RefreshTokenCredentials",
            "password = auth.flows.password:PasswordCredentials",
            "basic = auth.flows.soap_login:SoapLoginCredentials",
            "access_token = auth.flows.access_token:AccessTokenCredentials",
        ],
        "forcebeam.secret_providers": [
            "gcp-sm = auth.secrets.gcp_secret_manager:GcpSecretManagerProvider",
            "env = auth.secrets.env:EnvProvider",
            "file = auth.secrets.file:FileProvider",
        ],
    },
)
