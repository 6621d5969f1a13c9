"""``kapacity serve``: configuration, logging, the embedded store, the engine and uvicorn.

Shutdown (SIGTERM / SIGINT): uvicorn stops accepting connections and lets in-flight
requests finish (a /write that got its 204 has its points queued), then the engine
drains its queue, flushes and closes the handlers, and closes the store.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from kapacity.config.model import Config
from kapacity.server.app import create_app
from kapacity.server.engine import Engine
from kapacity.server.handlers import HandlerRegistry
from kapacity.server.servicetests import ServiceTests

log = logging.getLogger("kapacity.server")

#: How long uvicorn waits for open connections to finish after SIGTERM before closing them.
GRACEFUL_TIMEOUT_S = 30
#: A background server must answer within this (tests, benchmarks).
STARTUP_TIMEOUT_S = 30.0
#: Cyclic GC thresholds for the server. Ingestion allocates ~5 containers per point
#: (point, tags, fields, row...), nearly all freed by reference counting; with Python's
#: default (700, 10, 10) the collector runs every ~150 points and, once the heap holds the
#: alert state of 100,000 series, its full passes cost a third of the ingest rate
#: (bench/ingest.py). Collections still happen, 100x less often; memory held by cycles
#: is reclaimed a little later.
GC_THRESHOLDS = (100_000, 50, 1_000)


def tune_gc() -> None:
    """Apply :data:`GC_THRESHOLDS` and move what start-up allocated (modules, compiled
    tasks, restored state) out of the collector's sight (``gc.freeze``)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``msg`` (+ ``exc``)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(config: Config) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.logging.format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "ts=%(asctime)s lvl=%(levelname)s logger=%(name)s msg=%(message)r"))
    logging.Formatter.converter = time.gmtime
    root = logging.getLogger()
    root.handlers[:] = [handler]
    level = config.logging.level.upper()
    root.setLevel("WARNING" if level == "WARN" else level)


def build_engine(
    config: Config, data_dir: Path | None = None, *, persist: bool = True, instance: str | None = None,
) -> tuple[Engine, ServiceTests]:
    """The engine over the store in ``data_dir`` (``config.data_dir`` by default).

    With ``[queue] type = "kafka"`` it is a :class:`~kapacity.server.queued.QueuedEngine`
    over a queue :class:`~kapacity.runtime.app.Runtime` named ``instance`` (default: the
    config's ``hostname``; unique per instance, stable across restarts)."""
    from kapacity.server import wiring

    directory = Path(data_dir or config.data_dir)
    repo = (wiring.open_repository(directory, persist_events=config.alert.persist_topics) if persist
            else wiring.memory_repository())
    registry = HandlerRegistry(config)
    if config.queue.type == "kafka":
        from kapacity.runtime.app import Runtime
        from kapacity.server.queued import QueuedEngine

        runtime = Runtime(config, directory, instance=instance or config.hostname)
        queued = QueuedEngine(
            runtime, compiler=wiring.make_compiler(config), handlers=registry, repo=repo,
            match_compiler=wiring.make_match_compiler(), hostname=config.hostname,
        )
        return queued, wiring.make_service_tests(config, registry)
    engine = Engine(
        compiler=wiring.make_compiler(config), handlers=registry, repo=repo,
        match_compiler=wiring.make_match_compiler(), hostname=config.hostname,
    )
    return engine, wiring.make_service_tests(config, registry)


def split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host or "0.0.0.0", int(port)  # noqa: S104 - Kapacitor listens on all interfaces


@dataclass
class BackgroundServer:
    """uvicorn in a thread on ``host:port`` (tests and benchmarks; no signal handlers)."""

    app: FastAPI
    host: str = "127.0.0.1"
    port: int = 0
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None
    _started: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        if self.port == 0:
            from kapacity.kafka.devbroker import free_port

            self.port = free_port(self.host)
        cfg = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning",
                             lifespan="off", timeout_graceful_shutdown=GRACEFUL_TIMEOUT_S)
        server = uvicorn.Server(cfg)
        self._server = server
        self._thread = threading.Thread(target=server.run, name="kapacity-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"HTTP server did not start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(GRACEFUL_TIMEOUT_S + 5)
            self._server = None


@contextmanager
def running(
    config: Config, data_dir: Path, *, persist: bool = True, instance: str | None = None,
) -> Iterator[tuple[Engine, BackgroundServer]]:
    """A started engine and HTTP server on a free loopback port; stopped cleanly on exit."""
    engine, tests = build_engine(config, data_dir, persist=persist, instance=instance)
    engine.start()
    server = BackgroundServer(create_app(engine, tests))
    try:
        server.start()
        yield engine, server
    finally:
        server.stop()
        engine.close()


#: Where ``--dev-kafka`` puts its broker when the port is free (else any free port, logged):
#: a fixed address lets ``kapacity kafka tail`` find it without a config file.
DEV_KAFKA_PORT = 9093


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def with_dev_kafka(config: Config) -> tuple[Config, Any]:
    """With no enabled ``[[kafka]]`` cluster: start Tansu and add cluster ``dev`` on it."""
    if config.enabled_kafka_clusters():
        return config, None
    from kapacity.config.kafka import KafkaClusterConfig
    from kapacity.kafka.devbroker import start_tansu

    broker = start_tansu(DEV_KAFKA_PORT if _port_free(DEV_KAFKA_PORT) else None)
    cluster = KafkaClusterConfig(enabled=True, id="dev", brokers=[broker.bootstrap])
    log.info("--dev-kafka: started Tansu on %s as cluster 'dev'", broker.bootstrap)
    return config.model_copy(update={"kafka": [*config.kafka, cluster]}), broker


def _while_draining(signum: int, frame: object) -> None:
    del frame
    log.info("signal %s received; finishing the clean stop", signal.Signals(signum).name)


def serve(config: Config, *, dev_kafka: bool = False, instance: str | None = None) -> None:
    """Run until SIGTERM/SIGINT; then drain, flush and close (see module docstring)."""
    setup_logging(config)
    broker = None
    if dev_kafka:
        config, broker = with_dev_kafka(config)
    try:
        engine, tests = build_engine(config, instance=instance)
        engine.start()
        tune_gc()
        try:
            # uvicorn re-raises the stop signal once its server is down; with the default
            # handler that would kill the process before the engine drains. This handler
            # makes that (and any further signal during the drain) harmless.
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, _while_draining)
            host, port = split_bind(config.http.bind_address)
            log.info("listening on %s:%d (data in %s)", host, port, Path(config.data_dir).resolve())
            uvicorn.Server(uvicorn.Config(
                create_app(engine, tests), host=host, port=port, log_level="warning", lifespan="off",
                timeout_graceful_shutdown=GRACEFUL_TIMEOUT_S, access_log=False,
            )).run()
            log.info("HTTP server stopped; draining the pipeline and flushing handlers")
        finally:
            engine.close()
    finally:
        if broker is not None:
            broker.stop()
