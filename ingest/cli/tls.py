"""``edgeorder tls --out DIR --host NAME``: a private CA and the broker's TLS certificate.

Devices reach Mosquitto's TLS listener (``deploy/mosquitto/edgeorder.conf``: ``cafile``,
``certfile``, ``keyfile`` under ``/etc/mosquitto/edgeorder/tls``) and verify it against the
project's own CA, whose certificate each device keeps next to its config (``ca.crt``).

- The CA (``ca.crt``, ``ca.key`` 0600) is made once and kept: every device trusts it, so a
  re-run never replaces it (delete both files to start over; every device then needs the new
  ``ca.crt``).
- The server certificate (``server.crt``, ``server.key``) is issued on every run for the names
  given (DNS names or IP addresses, the ones devices use in their ``mqtts://`` URL): run it
  again to renew or to add a name, then reload Mosquitto. The key is readable by the broker
  only (``--owner``, default ``mosquitto:mosquitto``, mode 0640).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import re
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgeorder.ingest.cli.system import (
    HostError,
    Ownership,
    ensure_dir,
    parse_ownership,
    write_atomic,
)

__all__ = ["issue_server_cert", "load_or_create_ca", "main"]

CA_DAYS = 3650
SERVER_DAYS = 825  # the longest validity clients commonly accept for a leaf certificate

PrivateKey = ec.EllipticCurvePrivateKey


_DNS_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"^(\*\.)?{_DNS_LABEL}(\.{_DNS_LABEL})*$")
COMMON_NAME = "edgeorder MQTT broker"
"""The server certificate's subject; clients match the subjectAltName entries, not this."""


def _host_arg(value: str) -> str:
    """An IP address or a DNS name, as a device would write it in its mqtts:// URL."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if len(value) > 253 or not _DNS_NAME.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is neither an IP address nor a DNS name")
    return value.lower()


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Create the project's CA (once) and issue the MQTT broker's TLS "
        "certificate for the names devices connect to. Copy DIR/ca.crt to every device "
        "(next to its agent.toml) and reload Mosquitto after a re-run.",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="directory (e.g. /etc/mosquitto/edgeorder/tls)"
    )
    parser.add_argument(
        "--host",
        type=_host_arg,
        action="append",
        required=True,
        metavar="NAME",
        help="DNS name or IP address devices use for the broker; repeatable",
    )
    parser.add_argument(
        "--owner",
        default="mosquitto:mosquitto",
        help="USER:GROUP of server.key (default mosquitto:mosquitto; '' keeps the writer's)",
    )
    parser.add_argument("--ca-name", default="edgeorder CA", help="the CA's common name")
    parser.add_argument(
        "--days", type=int, default=SERVER_DAYS, help=f"server certificate validity ({SERVER_DAYS})"
    )
    return parser


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _pem_key(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _new_ca(name: str) -> tuple[PrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def load_or_create_ca(directory: Path, name: str) -> tuple[PrivateKey, x509.Certificate, bool]:
    """The CA in ``directory`` (ca.key, ca.crt), created if neither exists; True if new."""
    key_path, cert_path = directory / "ca.key", directory / "ca.crt"
    if key_path.exists() != cert_path.exists():
        raise HostError(
            f"only one of {key_path} and {cert_path} exists: restore the other, or delete "
            "both to make a new CA (every device then needs the new ca.crt)"
        )
    if key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise HostError(f"{key_path}: not an EC private key made by 'edgeorder tls'")
        return key, x509.load_pem_x509_certificate(cert_path.read_bytes()), False
    key, cert = _new_ca(name)
    write_atomic(key_path, _pem_key(key), mode=0o600)
    write_atomic(cert_path, _pem_cert(cert), mode=0o644)
    return key, cert, True


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def issue_server_cert(
    ca_key: PrivateKey, ca_cert: x509.Certificate, hosts: list[str], days: int
) -> tuple[PrivateKey, x509.Certificate]:
    """A serverAuth certificate for ``hosts`` (subjectAltName), signed by the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - dt.timedelta(minutes=5))
        .not_valid_after(_now() + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.days <= 3650:
        raise HostError("--days must be between 1 and 3650")
    owner: Ownership = parse_ownership(args.owner)
    ensure_dir(args.out, mode=0o755)
    ca_key, ca_cert, created = load_or_create_ca(args.out, args.ca_name)
    if created:
        print(f"created the CA: {args.out / 'ca.crt'} (copy it to every device) and ca.key")
    key, cert = issue_server_cert(ca_key, ca_cert, args.host, args.days)
    write_atomic(args.out / "server.key", _pem_key(key), mode=0o640, owner=owner)
    write_atomic(args.out / "server.crt", _pem_cert(cert), mode=0o644)
    until = cert.not_valid_after_utc.date().isoformat()
    print(f"issued {args.out / 'server.crt'} for {', '.join(args.host)} (valid until {until})")
    return 0


def main(argv: list[str], prog: str) -> int:
    args = _parser(prog).parse_args(argv)
    try:
        return run(args)
    except HostError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
