"""A second, throw-away Kafka broker with a SASL_SSL client listener, for test_secure_kafka.py.

It runs the same jars as the shared local broker (`devtools.broker.DEFAULT_HOME / "libs"`) from
its own temporary directory and free ports, so it never touches the shared broker on 9092.

* TLS: a CA and a server certificate for 127.0.0.1 / localhost are generated with `cryptography`
  and handed to Kafka as a PKCS12 keystore; clients trust the CA's PEM file.
* SASL: one SCRAM-SHA-512 user, written into the KRaft metadata by Kafka's own StorageTool at
  format time (`--add-scram`), so no broker-side user store or ZooKeeper is involved.
* The controller and the inter-broker listener are PLAINTEXT, bound to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from devtools import broker
from pipeline.settings import Settings

TEMPLATE = broker.KAFKA_DIR / "server-sasl.properties"
MECHANISM = "SCRAM-SHA-512"
# A smaller heap than the shared broker's: this one lives for one test module on 2 shared cores.
HEAP = ["-Xmx384m", "-Xms128m"]


class SecureBrokerError(RuntimeError):
    pass


def make_certificates(directory: Path, keystore_password: str) -> tuple[Path, Path]:
    """Write a CA (PEM, for clients) and a PKCS12 keystore with the broker's key and chain.

    Returns (ca_pem, keystore_p12). The server certificate names DNS:localhost and IP:127.0.0.1.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    validity = (now - dt.timedelta(minutes=5), now + dt.timedelta(days=2))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "newspipe test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    ca_pem = directory / "ca.pem"
    ca_pem.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    keystore = directory / "broker.p12"
    keystore.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"broker",
            key,
            cert,
            [ca_cert],
            serialization.BestAvailableEncryption(keystore_password.encode()),
        )
    )
    keystore.chmod(0o600)
    return ca_pem, keystore


@dataclass
class SecureBroker:
    home: Path
    port: int
    controller_port: int
    internal_port: int
    username: str
    password: str
    cafile: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    def settings(self, base: Settings | None = None, password: str | None = None) -> Settings:
        """`base` pointed at this broker over SASL_SSL with the SCRAM user."""
        return replace(
            base or Settings(),
            broker=f"kafka://{self.bootstrap}",
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism=MECHANISM,
            kafka_sasl_username=self.username,
            kafka_sasl_password=self.password if password is None else password,
            kafka_ssl_cafile=str(self.cafile),
        )

    def log_tail(self, chars: int = 3000) -> str:
        text = ""
        for name in ("stdout.log", "server.log"):
            path = self.log_dir / name
            if path.exists():
                text += f"--- {name}\n" + path.read_text(errors="replace")[-chars:]
        return text

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the broker's process group, SIGKILL after `timeout`; harmless if not running."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _java(home: Path, main: str, *args: str) -> list[str]:
    return [
        "java",
        *broker.JVM_OPTS,
        *HEAP,  # later -Xmx/-Xms win over the ones in JVM_OPTS
        f"-Dkafka.logs.dir={home / 'logs'}",
        f"-Dlog4j2.configurationFile={broker.KAFKA_DIR / 'log4j2.properties'}",
        "-cp",
        str(broker.DEFAULT_HOME / "libs" / "*"),
        main,
        *args,
    ]


async def _sasl_metadata_ok(settings: Settings) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        request_timeout_ms=5000,
        **settings.aiokafka_security(),
    )
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        await admin.close()


def start_secure_broker(
    home: Path, ports: tuple[int, int, int], username: str = "alice", timeout: float = 120.0
) -> SecureBroker:
    """Generate certificates, format storage with a SCRAM user, start Kafka, wait for SASL_SSL.

    `ports` is (client SASL_SSL, controller, inter-broker). On failure the broker is stopped and
    the error carries the tail of its log.
    """
    libs = broker.DEFAULT_HOME / "libs"
    if not any(libs.glob("kafka_*.jar")):
        broker.fetch_jars(broker.BrokerPaths(broker.DEFAULT_HOME))
    password = "scram-" + secrets.token_hex(12)
    keystore_password = secrets.token_hex(12)
    home.mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(exist_ok=True)
    data = home / "data"
    cafile, keystore = make_certificates(home / "tls", keystore_password)
    port, controller_port, internal_port = ports
    config = home / "server.properties"
    config.write_text(
        TEMPLATE.read_text()
        .replace("{port}", str(port))
        .replace("{controller_port}", str(controller_port))
        .replace("{internal_port}", str(internal_port))
        .replace("{log_dirs}", str(data))
        .replace("{keystore}", str(keystore))
        .replace("{keystore_password}", keystore_password)
    )
    config.chmod(0o600)
    fmt = subprocess.run(
        _java(
            home,
            "kafka.tools.StorageTool",
            "format",
            # `=` form: a random id may start with "-", which argparse would take for an option
            f"--cluster-id={broker._cluster_id()}",
            "-c",
            str(config),
            "--add-scram",
            f"{MECHANISM}=[name={username},password={password}]",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if fmt.returncode != 0:
        raise SecureBrokerError(
            "StorageTool format failed: " + (fmt.stdout + fmt.stderr).strip()[-1500:]
        )
    sb = SecureBroker(home, port, controller_port, internal_port, username, password, cafile)
    with open(home / "logs" / "stdout.log", "ab") as out:
        sb.proc = subprocess.Popen(
            _java(home, "kafka.Kafka", str(config)),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    settings = sb.settings()
    deadline = time.monotonic() + timeout
    try:
        while True:
            if sb.proc.poll() is not None:
                raise SecureBrokerError("the SASL_SSL broker exited during start-up")
            if broker._port_open("127.0.0.1", port) and asyncio.run(_sasl_metadata_ok(settings)):
                return sb
            if time.monotonic() > deadline:
                raise SecureBrokerError(f"the SASL_SSL broker was not ready within {timeout:.0f}s")
            time.sleep(0.5)
    except BaseException as exc:
        tail = sb.log_tail()
        sb.stop()
        if isinstance(exc, SecureBrokerError):
            raise SecureBrokerError(f"{exc}\n{tail}") from None
        raise
