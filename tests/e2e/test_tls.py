"""TLS to the register is verified against the configured CA: the right CA syncs, another is refused."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ledger.clock import FakeClock
from ledger.keys import load_key
from ledger.store import open_ledger, open_reader
from register.local import LocalRegister, serve_locally
from sync_agent.agent import SyncAgent
from sync_agent.client import RegisterClient
from sync_agent.errors import SyncError
from sync_agent.heartbeat import HeartbeatSource
from sync_agent.state import SyncState

REGISTER = "register.tls.kgate.kz"
ORIGIN = f"{REGISTER}/kgate/tls-gate"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_server_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, out: Path
) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = out / "server.pem", out / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def write_ca(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture
def https_register(tmp_path: Path) -> Iterator[tuple[LocalRegister, Path, Path]]:
    ca_key, ca = make_ca("kgate test CA")
    _, rogue = make_ca("someone else's CA")
    tls = make_server_cert(ca_key, ca, tmp_path)
    with serve_locally(str(tmp_path / "register.db"), tmp_path / "reg", REGISTER, tls=tls) as register:
        yield register, write_ca(ca, tmp_path / "ca.pem"), write_ca(rogue, tmp_path / "rogue.pem")


def sync_with(register: LocalRegister, device: Path, ca: Path) -> int:
    signer = load_key(device / "device.key")
    client = RegisterClient(register.url, signer, ca=ca, timeout=(5, 30))
    with open_reader(device / "ledger.db") as reader, SyncState(device / "sync") as state:
        agent = SyncAgent(
            reader,
            state,
            client,
            register.keys.cosigner.verifier(),
            heartbeat=HeartbeatSource(device / "ledger.db", None),
        )
        try:
            return agent.sync_once().cosigned_size
        finally:
            client.close()


def test_sync_over_https_needs_the_configured_ca(
    https_register: tuple[LocalRegister, Path, Path], tmp_path: Path
) -> None:
    register, ca, rogue = https_register
    assert register.url.startswith("https://")
    device = tmp_path / "device"
    with open_ledger(device / "ledger.db", origin=ORIGIN, clock=FakeClock(1_790_000_000_000)) as ledger:
        for i in range(40):
            ledger.append("in", child=f"C{i}", method="qr")
        register.store.add_device(ledger.vkey, kindergarten="K", gate="1", now_ms=0)

    with pytest.raises(SyncError):
        sync_with(register, device, rogue)
    with SyncState(device / "sync", readonly=True) as state:
        snap = state.read()
    assert snap.cosigned_size in (None, 0)
    assert snap.last_error is not None and "certificate" in snap.last_error.lower()

    assert sync_with(register, device, ca) == 40
