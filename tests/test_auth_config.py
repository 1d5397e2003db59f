"""Connection configs: validation errors a user can act on, and values safe to ship to workers."""

from __future__ import annotations

import pickle

import pytest

from forcebeam.auth import ConfigError, Connection

JWT = {"type": "jwt_bearer", "username": "etl@acme.com", "consumer_key": "3MVG9abc",
       "private_key": "gcp-sm://projects/acme/secrets/sf-key/versions/latest"}


def connection(**overrides):
    data = {"login_url": "https://acme.my.salesforce.com", "auth": dict(JWT)}
    data.update(overrides)
    return Connection.from_mapping(data, source="pipeline.yaml", path="connections.prod")


def error_for(data) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        Connection.from_mapping(data, source="pipeline.yaml", path="connections.prod")
    return caught.value


@pytest.mark.parametrize("auth", [
    JWT,
    {"type": "client_credentials", "consumer_key": "k", "consumer_secret": "env://SF_SECRET"},
    {"type": "refresh_token", "consumer_key": "k", "refresh_token": "file:///etc/sf/rt"},
    {"type": "password", "username": "u", "password": "env://P", "security_token": "env://T",
     "consumer_key": "k", "consumer_secret": "env://S"},
    {"type": "basic", "username": "u", "password": "env://P", "security_token": "env://T"},
    {"type": "access_token", "access_token": "env://TOKEN",
     "instance_url": "https://acme.my.salesforce.com"},
])
def test_every_auth_type_validates_and_round_trips_through_pickle(auth):
    value = connection(auth=auth, mutual_tls={"certificate": "file:cert.pem",
                                              "private_key": "env://MTLS_KEY"})
    assert value.auth.type == auth["type"]
    restored = pickle.loads(pickle.dumps(value))  # noqa: S301 - our own bytes
    assert restored == value
    assert hash(restored) == hash(value)


def test_defaults_and_normalisation():
    value = connection(api_version=61, max_api_usage="80%", login_url="https://ACME.my.salesforce.com/")
    assert value.api_version == "61.0"
    assert value.login_url == "https://acme.my.salesforce.com"
    assert value.api_usage_ceiling(5000) == 4000
    assert connection().api_version == "62.0"


def test_mutual_tls_port_goes_on_login_and_on_portless_instance_url():
    value = connection(mutual_tls={"certificate": "env://C", "private_key": "env://K"})
    assert value.login_endpoint() == "https://acme.my.salesforce.com:8443"
    assert value.api_endpoint("https://acme.my.salesforce.com") == \
        "https://acme.my.salesforce.com:8443"
    # A listener that names its own port (the emulator's mTLS listener) is kept as is.
    assert value.api_endpoint("https://127.0.0.1:40123") == "https://127.0.0.1:40123"
    assert connection().api_endpoint("https://acme.my.salesforce.com/") == \
        "https://acme.my.salesforce.com"


def test_literal_secret_is_refused_without_echoing_it():
    pasted = "-----BEGIN PRIVATE KEY-----MIIEvQIBADANBg"
    error = error_for({"login_url": "https://x.my.salesforce.com",
                       "auth": dict(JWT, private_key=pasted)})
    assert error.path == "connections.prod.auth.private_key"
    assert "secret reference" in str(error) and "gcp-sm://" in error.suggestion
    assert "MIIEvQ" not in str(error)
    assert error.source == "pipeline.yaml"


@pytest.mark.parametrize(("data", "path", "words"), [
    ({"login_url": "http://login.salesforce.com", "auth": JWT},
     "connections.prod.login_url", "https://"),
    ({"login_url": "https://x.my.salesforce.com/services", "auth": JWT},
     "connections.prod.login_url", "without a path"),
    ({"login_url": "https://x.my.salesforce.com", "auth": dict(JWT, type="jwt")},
     "connections.prod.auth.type", "jwt_bearer"),
    ({"login_url": "https://x.my.salesforce.com", "auth": dict(JWT, privte_key="env://K")},
     "connections.prod.auth.privte_key", "private_key"),
    ({"login_url": "https://x.my.salesforce.com",
      "auth": {"type": "client_credentials", "consumer_key": "k"}},
     "connections.prod.auth.consumer_secret", "missing"),
    ({"login_url": "https://x.my.salesforce.com", "auth": JWT, "api_version": "latest"},
     "connections.prod.api_version", "62.0"),
    ({"login_url": "https://x.my.salesforce.com", "auth": JWT, "max_api_usage": "150%"},
     "connections.prod.max_api_usage", "80%"),
    ({"login_url": "https://x.my.salesforce.com", "auth": JWT,
      "mutual_tls": {"certificate": "env://C"}},
     "connections.prod.mutual_tls.private_key", "missing"),
    ({"login_url": "https://x.my.salesforce.com"}, "connections.prod.auth", "type"),
    ({"login_url": "https://x.my.salesforce.com", "auth": dict(JWT, private_key="vault://k")},
     "connections.prod.auth.private_key", "unknown secret scheme 'vault'"),
    ({"login_url": "https://x.my.salesforce.com", "auth": JWT, "ca_bundle": ""},
     "connections.prod.ca_bundle", "path of a PEM file"),
])
def test_bad_input_names_the_field_and_a_fix(data, path, words):
    error = error_for(data)
    assert error.path == path
    assert words in str(error)
    assert str(error).startswith("pipeline.yaml: ")


def test_relative_ca_bundle_is_read_next_to_the_pipeline_file(tmp_path):
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("connections: {}")
    value = Connection.from_mapping({"login_url": "https://x.my.salesforce.com", "auth": JWT,
                                     "ca_bundle": "certs/ca.pem"}, source=str(pipeline))
    assert value.ca_bundle == str(tmp_path / "certs" / "ca.pem")


def test_repr_is_short_and_names_only_url_and_auth_type():
    value = connection()
    assert repr(value) == "Connection(https://acme.my.salesforce.com, auth=jwt_bearer)"


def test_every_flow_and_provider_is_reachable_through_its_entry_point():
    from importlib.metadata import entry_points

    flows = {e.name: e.load() for e in entry_points(group="forcebeam.auth_flows")}
    assert set(flows) >= {"jwt_bearer", "client_credentials", "refresh_token", "password",
                          "basic", "access_token", "token_exchange"}
    for name, flow in flows.items():
        assert flow.type == name
        assert flow.config_model.model_fields["type"].annotation.__args__ == (name,)
    providers = {e.name: e.load() for e in entry_points(group="forcebeam.secret_providers")}
    assert {name: p.scheme for name, p in providers.items()} == \
        {"gcp-sm": "gcp-sm", "env": "env", "file": "file"}
    sources = {e.name: e.load() for e in entry_points(group="forcebeam.subject_tokens")}
    assert set(sources) >= {"google-id-token"} and all(hasattr(s, "fetch")
                                                       for s in sources.values())


def test_absolute_max_api_usage():
    value = connection(max_api_usage=1200)
    assert value.max_api_usage == "1200"
    assert value.api_usage_ceiling(5000) == 1200


def test_client_credentials_on_the_generic_login_host_is_caught_before_any_call():
    error = error_for({"login_url": "https://login.salesforce.com",
                       "auth": {"type": "client_credentials", "consumer_key": "k",
                                "consumer_secret": "env://S"}})
    assert error.path == "connections.prod.login_url"
    assert "my.salesforce.com" in error.suggestion


@pytest.mark.parametrize(("login_url", "audience"), [
    ("https://login.salesforce.com", "https://login.salesforce.com"),
    ("https://test.salesforce.com", "https://test.salesforce.com"),
    ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
    ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
    ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
])
def test_jwt_audience_defaults_from_the_login_url(login_url, audience):
    from forcebeam.auth.flows.jwt_bearer import default_audience

    assert default_audience(login_url) == audience
