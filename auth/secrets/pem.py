"""Normalise PEM material as it comes out of secret stores and web forms.

Secret stores and UIs mangle PEMs: newlines become a literal ``\\n``, quotes get kept,
headers get stripped. We accept all of that and hand out clean PEM: private keys as
unencrypted PKCS#8, certificates as a chain of ``CERTIFICATE`` blocks (leaf first).
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


def _clean(raw: bytes) -> bytes:
    text = raw.strip().strip(b'"\'').strip()
    text = text.replace(b"\\r\\n", b"\n").replace(b"\\n", b"\n").replace(b"\r\n", b"\n")
    return text


def _der_from_bare_base64(text: bytes) -> bytes | None:
    body = re.sub(rb"\s+", b"", text)
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return None


def _rebuild_block(label: bytes, body: bytes) -> bytes:
    """A PEM block whose base64 body may have lost its newlines (or gained spaces)."""
    compact = re.sub(rb"\s+", b"", body)
    lines = [compact[i:i + 64] for i in range(0, len(compact), 64)]
    return b"-----BEGIN " + label + b"-----\n" + b"\n".join(lines) + b"\n-----END " + label \
        + b"-----\n"


def load_private_key(raw: bytes) -> PrivateKeyTypes:
    """Parse a private key: PEM (PKCS#1 or PKCS#8), mangled PEM, or bare base64 DER.

    Raises ValueError with a message that never includes key bytes.
    """
    text = _clean(raw)
    blocks = [(m.group(1), m.group(2)) for m in _BLOCK.finditer(text)]
    candidates: list[tuple[str, bytes]] = []
    for label, body in blocks:
        if b"PRIVATE KEY" in label:
            candidates.append(("pem", _rebuild_block(label, body)))
    if not blocks:
        der = _der_from_bare_base64(text)
        if der is not None:
            candidates.append(("der", der))
    for kind, data in candidates:
        try:
            if kind == "pem":
                return serialization.load_pem_private_key(data, password=None)
            return serialization.load_der_private_key(data, password=None)
        except (ValueError, TypeError):
            continue
    raise ValueError("not a readable unencrypted private key (expected PEM 'BEGIN PRIVATE KEY' "
                     "or 'BEGIN RSA PRIVATE KEY', or its base64 body); encrypted keys are not "
                     "supported — decrypt with `openssl pkey -in key.pem -out plain.pem`")


def normalize_private_key(raw: bytes) -> bytes:
    """Clean unencrypted PKCS#8 PEM bytes of whatever key ``raw`` holds."""
    key = load_private_key(raw)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_certificates(raw: bytes) -> list[x509.Certificate]:
    """Parse one or more certificates (leaf first), tolerating the same mangling as keys."""
    text = _clean(raw)
    blocks = [(m.group(1), m.group(2)) for m in _BLOCK.finditer(text)]
    certificates: list[x509.Certificate] = []
    try:
        if blocks:
            for label, body in blocks:
                if label in (b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"):
                    certificates.append(x509.load_pem_x509_certificate(
                        _rebuild_block(b"CERTIFICATE", body)))
        else:
            der = _der_from_bare_base64(text)
            if der is not None:
                certificates.append(x509.load_der_x509_certificate(der))
    except ValueError:
        certificates = []
    if not certificates:
        raise ValueError("not a readable X.509 certificate (expected PEM 'BEGIN CERTIFICATE' "
                         "or its base64 body)")
    return certificates


def normalize_certificates(raw: bytes) -> bytes:
    """Clean PEM of the certificate chain in ``raw``."""
    return b"".join(cert.public_bytes(serialization.Encoding.PEM)
                    for cert in load_certificates(raw))
