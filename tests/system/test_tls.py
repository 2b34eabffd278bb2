"""HTTPS: serve with a certificate; the CLI and client verify it, trusting a CA given with --ca."""

from __future__ import annotations

import datetime
import ipaddress
import json
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.system.conftest import Server

HELLO = "def handler(event, context):\n    return {'ok': True}\n"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_serve_speaks_https_and_the_cli_verifies_the_certificate(tmp_path, make_function):
    cert, key = _self_signed(tmp_path)
    server = Server(
        tmp_path / "data", "--tls-cert", str(cert), "--tls-key", str(key), ca_file=cert
    ).start()
    try:
        assert server.url.startswith("https://")
        server.deploy(make_function("hello", HELLO))
        ok = server.cli("invoke", "hello", "--url", server.url, "--ca", str(cert))
        assert ok.returncode == 0 and json.loads(ok.stdout) == {"ok": True}
        untrusted = server.cli("invoke", "hello", "--url", server.url)
        assert untrusted.returncode == 7
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
        plain = server.cli("ls", "--url", server.url.replace("https", "http"))
        assert plain.returncode != 0
    finally:
        server.stop()


def test_a_certificate_without_its_key_is_refused_at_start(tmp_path):
    cert, _ = _self_signed(tmp_path)
    server = Server(tmp_path / "data", "--tls-cert", str(cert))
    try:
        server.start()
    except RuntimeError as exc:
        assert "--tls-cert and --tls-key go together" in str(exc)
    else:
        raise AssertionError("serve started with a certificate and no key")
    finally:
        server.stop()
