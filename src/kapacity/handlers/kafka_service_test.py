"""The Kafka service test: send one raw message to a cluster and wait for the broker's ack.

Semantics of Kapacitor's ``GET|POST /kapacitor/v1/service-tests/kafka``: ``GET`` returns
:data:`SERVICE_TEST_DEFAULTS`; ``POST`` overlays a JSON object on them and answers
``{"success": bool, "message": str}``. Kapacitor answers success as soon as the message is
*queued*; kapacity answers success only once the broker acknowledged it, within the
cluster's ``timeout``, and a clear failure otherwise (auth refused, TLS untrusted, broker
unreachable, unknown cluster) - never a hang.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Final

from confluent_kafka import KafkaError as RdError
from confluent_kafka import KafkaException, Producer

from kapacity.config.model import Config
from kapacity.errors import KapacityError
from kapacity.handlers.kafka import checked_producer_config
from kapacity.kafka.errors import is_auth_error

SERVICE_TEST_DEFAULTS: Final[Mapping[str, str]] = {
    "cluster": "example",
    "topic": "test",
    "key": "key",
    "message": "test kafka message",
}

#: How often the wait loop checks for an ack or an auth failure (the latter is reported
#: through the client's error callback, not the message's delivery report).
_SLICE_S: Final = 0.05


def kafka_service_test_options() -> dict[str, str]:
    """What ``GET /kapacitor/v1/service-tests/kafka`` returns as ``options``."""
    return dict(SERVICE_TEST_DEFAULTS)


def _merge(options: Mapping[str, Any] | None) -> dict[str, str]:
    merged = dict(SERVICE_TEST_DEFAULTS)
    for key, value in (options or {}).items():
        if key not in SERVICE_TEST_DEFAULTS:
            valid = ", ".join(SERVICE_TEST_DEFAULTS)
            raise ValueError(f"unknown option {key!r}; valid options: {valid}")
        if not isinstance(value, str):
            raise ValueError(f"option {key!r} must be a string, got {type(value).__name__}")
        merged[key] = value
    if not merged["topic"]:
        raise ValueError("topic must not be empty")
    return merged


def run_kafka_service_test(
    config: Config, options: Mapping[str, Any] | None = None, timeout: float | None = None
) -> tuple[bool, str]:
    """Send ``options["message"]`` with ``options["key"]`` to ``options["topic"]``.

    Returns ``(True, "")`` once the broker acknowledged it, else ``(False, reason)``
    within ``timeout`` seconds (default: the cluster's ``timeout``).

    >>> # run_kafka_service_test(config, {"cluster": "main", "topic": "smoke"})
    >>> # (True, '')
    """
    try:
        opts = _merge(options)
        cluster = config.kafka_cluster(opts["cluster"])
        conf = checked_producer_config(cluster)
    except (KapacityError, ValueError) as exc:
        return False, str(exc)
    wait_s = timeout if timeout is not None else cluster.timeout / 1e9
    return _send_and_wait(cluster.id, conf, opts, wait_s)


def _send_and_wait(cluster_id: str, conf: dict[str, Any], opts: dict[str, str], timeout: float) -> tuple[bool, str]:
    client_errors: list[RdError] = []
    reports: list[RdError | None] = []
    conf = dict(conf)
    conf["error_cb"] = client_errors.append
    conf["logger"] = logging.getLogger("kapacity.kafka.librdkafka.service-test")
    # The broker's answer must come within the test's timeout; the one message goes at once.
    conf["message.timeout.ms"] = max(1, int(timeout * 1000))
    conf["linger.ms"] = 0
    where = f"kafka cluster {cluster_id!r} topic {opts['topic']!r}"
    try:
        producer = Producer(conf)
        producer.produce(
            opts["topic"], opts["message"].encode(), opts["key"].encode(),
            on_delivery=lambda err, msg: reports.append(err),
        )
    except (KafkaException, BufferError) as exc:
        return False, f"{where}: cannot send: {exc}"
    deadline = time.monotonic() + timeout
    try:
        while not reports:
            producer.flush(_SLICE_S)
            auth = next((e for e in client_errors if is_auth_error(e.code())), None)
            if auth is not None and not reports:
                return False, f"{where}: the cluster refused the connection: {auth.str()}"
            if time.monotonic() >= deadline and not reports:
                last = f"; last error: {client_errors[-1].str()}" if client_errors else ""
                return False, f"{where}: not acknowledged within {timeout:g}s{last}"
    finally:
        producer.purge(in_queue=True, in_flight=True, blocking=True)
        producer.poll(0)
        producer.close()
    err = reports[0]
    if err is None:
        return True, ""
    last = f" (last client error: {client_errors[-1].str()})" if client_errors else ""
    return False, f"{where}: delivery failed: {err.str()}{last}"
