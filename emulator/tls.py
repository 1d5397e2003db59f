"""Certificates and TLS contexts for the emulated org.

Real clients verify TLS, so the emulator has its own CA: a server certificate for the org's
hosts (loopback plus the Salesforce host names a routing adapter may keep in SNI), a client
certificate the org trusts for mutual TLS, and the connected app's JWT signing key with its
self-signed certificate (what an admin uploads under "Use digital signatures").
Everything is generated once per data directory and reused, so restarts keep their trust.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_DNS_NAMES = ("localhost", "login.salesforce.com", "test.salesforce.com",
                    "*.my.salesforce.com", "*.sandbox.my.salesforce.com")
SERVER_IPS = ("127.0.0.1",)
VALIDITY = dt.timedelta(days=825)


@dataclass(frozen=True)
class PkiPaths:
    """Absolute paths of every PEM file the emulator serves or hands to its users."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    jwt_cert: Path
    jwt_key: Path


def _write_private(path: Path, data: bytes) -> None:
    """Write a key file readable by its owner only (created 0600, never world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "forcebeam emulator"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + VALIDITY))


def self_signed_rsa(common_name: str) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for a JWT signing key: RSA 2048, self-signed."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _builder(_name(common_name), _name(common_name), key.public_key()).sign(
        key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _issue(ca_cert: x509.Certificate, ca_key, common_name: str, *, server: bool):
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _builder(_name(common_name), ca_cert.subject, key.public_key())
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
    if server:
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in SERVER_DNS_NAMES]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), False)
        usage = ExtendedKeyUsageOID.SERVER_AUTH
    else:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert, key


def ensure_pki(directory: Path, client_common_name: str) -> PkiPaths:
    """Create (or reuse) the CA, server, trusted client and JWT key material in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    directory = directory.resolve()
    paths = PkiPaths(*(directory / name for name in (
        "ca.pem", "ca.key", "server.pem", "server.key", "client.pem", "client.key",
        "connected_app.pem", "connected_app.key")))
    if all(p.exists() for p in vars(paths).values()):
        return paths
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("forcebeam emulator CA")
    ca_cert = (_builder(ca_name, ca_name, ca_key.public_key())
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                            crl_sign=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False,
                                            decipher_only=False), True)
               .sign(ca_key, hashes.SHA256()))
    server_cert, server_key = _issue(ca_cert, ca_key, "127.0.0.1", server=True)
    client_cert, client_key = _issue(ca_cert, ca_key, client_common_name, server=False)
    jwt_cert, jwt_key = self_signed_rsa("forcebeam-emulator-connected-app")
    pem = serialization.Encoding.PEM
    paths.ca_cert.write_bytes(ca_cert.public_bytes(pem))
    _write_private(paths.ca_key, _key_pem(ca_key))
    paths.server_cert.write_bytes(server_cert.public_bytes(pem))
    _write_private(paths.server_key, _key_pem(server_key))
    paths.client_cert.write_bytes(client_cert.public_bytes(pem))
    _write_private(paths.client_key, _key_pem(client_key))
    paths.jwt_cert.write_bytes(jwt_cert)
    _write_private(paths.jwt_key, jwt_key)
    return paths


def server_context(paths: PkiPaths) -> ssl.SSLContext:
    """TLS for the main listener: server auth only."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(paths.server_cert, paths.server_key)
    return context


def mutual_tls_context(paths: PkiPaths) -> ssl.SSLContext:
    """TLS for the mutual-TLS listener (a real org's port 8443).

    Client certificates are requested but optional (users without the enforce permission may
    connect without one); a presented chain must verify against the CA the org trusts, as
    Salesforce runs standard path validation during the handshake.
    """
    context = server_context(paths)
    context.verify_mode = ssl.CERT_OPTIONAL
    context.load_verify_locations(cafile=str(paths.ca_cert))
    return context


def certificate_fingerprint(pem_or_der: bytes | x509.Certificate) -> str:
    """SHA-256 hex fingerprint: how the org recognises an uploaded certificate."""
    if isinstance(pem_or_der, x509.Certificate):
        cert = pem_or_der
    elif pem_or_der.lstrip().startswith(b"-----"):
        cert = x509.load_pem_x509_certificate(pem_or_der)
    else:
        cert = x509.load_der_x509_certificate(pem_or_der)
    return cert.fingerprint(hashes.SHA256()).hex()
