"""Environment variables that point the example pipelines at a running emulated org.

The examples never hard-code an org: they say `${FORCEBEAM_LOGIN_URL}`,
`${FORCEBEAM_PRIVATE_KEY_SECRET}`, ... The demo (and tests) derive these values from the
emulator's info file (ARCHITECTURE §6). Values a pipeline treats as secrets are exported for
`env://NAME` references, never written into a pipeline file.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

# google-auth reads these at import time: offline, never probe a metadata server.
OFFLINE_GOOGLE_ENV = {"NO_GCE_CHECK": "true", "GCE_METADATA_HOST": "127.0.0.1:9",
                      "GCE_METADATA_IP": "127.0.0.1:9"}

# The emulated org's server stack is an extra: a Beam worker never installs it.
EMULATOR_STACK = ("aiohttp", "lark")


def missing_emulator_stack() -> str | None:
    """What to install before the emulator can start, or None when it can."""
    missing = [name for name in EMULATOR_STACK if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return (f"the emulated org needs {', '.join(missing)} (the emulator extra): "
            "pip install 'forcebeam[emulator]'")


def env_from_info(info: Mapping[str, Any]) -> dict[str, str]:
    """FORCEBEAM_* variables (and SECRET_MANAGER_EMULATOR_HOST) for an emulator info dict."""
    app = info.get("connected_app", {})
    client_tls = info.get("client_tls", {})
    exchange = info.get("token_exchange", {})
    values = {
        "FORCEBEAM_LOGIN_URL": info["login_url"],
        "FORCEBEAM_INSTANCE_URL": info["instance_url"],
        "FORCEBEAM_CA_CERT": info["ca_cert"],
        "FORCEBEAM_API_VERSION": info.get("api_version", "62.0"),
        "FORCEBEAM_USERNAME": info["username"],
        "FORCEBEAM_PASSWORD": info.get("password", ""),
        "FORCEBEAM_SECURITY_TOKEN": info.get("security_token", ""),
        "FORCEBEAM_CONSUMER_KEY": app.get("consumer_key", ""),
        "FORCEBEAM_CONSUMER_SECRET": app.get("consumer_secret", ""),
        "FORCEBEAM_PRIVATE_KEY_SECRET": app.get("private_key_secret", ""),
        "FORCEBEAM_PRIVATE_KEY_FILE": app.get("private_key", ""),
        "FORCEBEAM_MTLS_USERNAME": info.get("mtls_username", ""),
        "FORCEBEAM_MTLS_PORT": str(urlsplit(info.get("mtls_url", "")).port or 8443),
        "FORCEBEAM_CLIENT_CERT": client_tls.get("certificate", ""),
        "FORCEBEAM_CLIENT_KEY": client_tls.get("private_key", ""),
        "FORCEBEAM_CLIENT_KEY_SECRET": client_tls.get("private_key_secret", ""),
        "SECRET_MANAGER_EMULATOR_HOST": info["secret_manager_host"],
        "FORCEBEAM_TOKEN_EXCHANGE_CONSUMER_KEY": exchange.get("consumer_key", ""),
        "FORCEBEAM_TOKEN_EXCHANGE_AUDIENCE": exchange.get("audience", ""),
    }
    return {**OFFLINE_GOOGLE_ENV, **{key: str(value) for key, value in values.items()}}


def use_org(info: Mapping[str, Any], environ: MutableMapping[str, str] | None = None
            ) -> dict[str, str]:
    """Point this process at the emulated org `info` describes.

    Sets the variables of `env_from_info` and forgets secrets and clients resolved for a
    previous org, so nothing this process learnt from one org is used against another
    (`env://` values, in particular, are cached per process by reference).
    """
    values = env_from_info(info)
    (os.environ if environ is None else environ).update(values)
    forget_org()
    return values


def forget_org() -> None:
    """Drop this process's resolved secrets and shared clients (see `use_org`)."""
    from forcebeam.auth import factory, secrets

    secrets.clear_cache()
    factory.reset()


def main(argv: list[str] | None = None) -> int:
    """`python -m forcebeam.pipelines.emulator_env INFO_FILE`: print `export` lines for a shell.

    For the emulator's throwaway test credentials only (they are in its info file anyway);
    never point this at anything holding real secrets.
    """
    import json
    import shlex
    import sys

    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1:
        print("usage: python -m forcebeam.pipelines.emulator_env INFO_FILE", file=sys.stderr)
        return 2
    with open(arguments[0], encoding="utf-8") as handle:
        info = json.load(handle)
    for name, value in env_from_info(info).items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
