"""TLS for broker tests: a throw-away CA, a server certificate, and a TLS-terminating proxy.

Neither Tansu nor noida-db speaks TLS, so TLS tests put :class:`TlsProxy` in front of a
plaintext broker that *advertises the proxy's port*: the client bootstraps through the
proxy and is told to come back to it for every broker connection.

Everything is generated at test time with ``cryptography``; nothing is read from disk
that the test did not write.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: Certificates are valid from a little in the past: the proxy and the client share the
#: clock, but librdkafka's OpenSSL rejects a certificate whose notBefore is "now" rounded up.
_BACKDATE = _dt.timedelta(hours=1)
_LIFETIME = _dt.timedelta(days=2)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a test PKI: ``ca`` signed ``server_cert``; ``wrong_ca`` signed nothing."""

    ca: Path
    wrong_ca: Path
    server_cert: Path
    server_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _dt.datetime.now(_dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_test_pki(directory: Path) -> TlsFiles:
    """Write a CA, an unrelated "wrong" CA and a server certificate for 127.0.0.1/localhost."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca("kapacity test CA")
    _, wrong_cert = _ca("kapacity wrong CA")
    server_key = ec.generate_private_key(ec.SECP256R1())
    now = _dt.datetime.now(_dt.UTC)
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _LIFETIME)
        .add_extension(
            # librdkafka checks the host name (ssl.endpoint.identification.algorithm=https).
            x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
            ]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        ca=directory / "ca.pem",
        wrong_ca=directory / "wrong-ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server-key.pem",
    )
    files.ca.write_bytes(_pem(ca_cert))
    files.wrong_ca.write_bytes(_pem(wrong_cert))
    files.server_cert.write_bytes(_pem(server_cert))
    files.server_key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


class TlsProxy:
    """Terminates TLS on ``127.0.0.1:<port>`` and forwards the bytes to a plaintext upstream.

    Runs its own asyncio loop in a daemon thread; :meth:`close` stops it. Use as a
    context manager. A failed handshake (e.g. a client that distrusts the certificate)
    just closes that connection, as a real TLS listener does.
    """

    def __init__(self, files: TlsFiles, upstream_port: int, host: str = "127.0.0.1") -> None:
        self._ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ctx.load_cert_chain(files.server_cert, files.server_key)
        self._host = host
        self._upstream = upstream_port
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        self._sock = sock
        self.port: int = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name=f"tls-proxy-{self.port}", daemon=True)
        self._started = threading.Event()
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("TLS proxy did not start within 10s")

    @property
    def address(self) -> str:
        return f"{self._host}:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, sock=self._sock, ssl=self._ctx, ssl_handshake_timeout=10)
        )
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]  # the handler task returns None
        self._writers.add(writer)
        up_writer: asyncio.StreamWriter | None = None
        try:
            try:
                up_reader, up_writer = await asyncio.open_connection(self._host, self._upstream)
            except OSError:
                writer.close()
                return
            self._writers.add(up_writer)
            await asyncio.gather(
                self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
            )
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            self._writers.discard(writer)
            if up_writer is not None:
                self._writers.discard(up_writer)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.close()

    def close(self) -> None:
        async def _stop() -> None:
            if self._server is not None:
                self._server.close()
            # Closing the transports ends every pipe; cancelling the tasks instead makes
            # asyncio's stream callback log a spurious CancelledError.
            for w in list(self._writers):
                w.transport.abort()
            pending = [t for t in self._tasks if not t.done()]
            if pending:
                await asyncio.wait(pending, timeout=5)
            if self._server is not None:
                await self._server.wait_closed()
            # Let the transports' connection_lost callbacks run before the loop stops, so
            # none is left unclosed for the garbage collector to warn about.
            await asyncio.sleep(0.05)

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> TlsProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
