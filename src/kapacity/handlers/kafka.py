"""The Kafka event handler: alerts become Kafka messages, keyed by alert ID.

Options (handler file ``options:``, matched case-insensitively; TICKscript ``.kafka()``):

==========================  ===========================================================
``cluster``                 id of an enabled ``[[kafka]]`` cluster; may be omitted when
                            exactly one cluster is enabled
``topic``                   required (TICKscript ``.kafkaTopic()``; ``kafkaTopic`` accepted)
``template``                Go text/template for the value; "" = Kapacitor's JSON body
``disablePartitionById``    true: least-bytes balancing instead of hashing the ID
``partitionAlgorithm``      ``crc32`` (default), ``murmur2``, ``fnv-1a``
                            (``partitionHashAlgorithm`` accepted, as Kapacitor's code says)
==========================  ===========================================================

Everything is checked when the handler is defined (:func:`parse_kafka_options`), not when
the first alert is written. Delivery, buffering and stats live in the shared per-cluster
:class:`~kapacity.kafka.producer.ClusterProducer`.

Example::

    pool = ProducerPool()
    handler = KafkaHandler.create({"topic": "alerts"}, config, pool)
    handler.handle(alert)      # non-blocking
    handler.close(timeout=10)  # flushes; undelivered alerts are counted, never silent
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol
from zlib import crc32

from confluent_kafka import KafkaException

from kapacity.alert.event import AlertData, encode_alert_json
from kapacity.config.kafka import KafkaClusterConfig
from kapacity.config.model import Config
from kapacity.errors import KapacityError
from kapacity.gotmpl import parse as parse_go_template
from kapacity.handlers.errors import HandlerOptionError
from kapacity.kafka.clientconfig import check_runtime_support, producer_config
from kapacity.kafka.errors import KafkaSetupError
from kapacity.kafka.partitioners import (
    DEFAULT_PARTITIONER,
    PARTITIONER_NAMES,
    LeastBytesBalancer,
    PartitionerError,
    canonical_partitioner_name,
    get_partitioner,
)
from kapacity.kafka.producer import (
    DEFAULT_BUFFER_CAPACITY,
    Chooser,
    ClusterProducer,
    ConfluentTransport,
    Headers,
    TopicStats,
    by_client_hash,
    message_timeout_s,
)

KIND: Final = "kafka"

#: Canonical option names, in the order error messages list them.
OPTION_NAMES: Final = ("cluster", "topic", "template", "disablePartitionById", "partitionAlgorithm")

#: Other spellings found in Kapacitor's docs and code, by lower-cased key.
_ALIASES: Final = {"kafkatopic": "topic", "partitionhashalgorithm": "partitionAlgorithm"}
_BY_LOWER: Final = {name.lower(): name for name in OPTION_NAMES} | _ALIASES

#: The template's name in its error messages (Kapacitor's, too).
TEMPLATE_NAME: Final = "kafka alert template"


class Template(Protocol):
    """What the handler needs from a parsed Go template (``kapacity.gotmpl``)."""

    def execute(self, data: Any) -> str: ...


@dataclass(frozen=True, slots=True)
class KafkaHandlerSpec:
    """Validated options of one Kafka handler (the cluster id is resolved)."""

    cluster: str
    topic: str
    template: str = ""
    disable_partition_by_id: bool = False
    partition_algorithm: str = DEFAULT_PARTITIONER


def _fail(option: str, message: str) -> HandlerOptionError:
    return HandlerOptionError(KIND, option, message)


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _fail(name, f"must be a string, got {type(value).__name__} {value!r}")
    return value


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _fail(name, f"must be true or false, got {value!r}")


def parse_template(text: str) -> Template:
    """Parse a handler template; :class:`HandlerOptionError` names the option on failure."""
    try:
        template: Template = parse_go_template(text, TEMPLATE_NAME)
    except KapacityError as exc:
        raise _fail("template", f"failed to parse template: {exc}") from None
    return template


def _cluster_lookup(clusters: Config | Iterable[KafkaClusterConfig]) -> Callable[[str], KafkaClusterConfig]:
    if isinstance(clusters, Config):
        return clusters.kafka_cluster
    return Config(kafka=list(clusters)).kafka_cluster


def parse_kafka_options(
    options: Mapping[str, Any], clusters: Config | Iterable[KafkaClusterConfig]
) -> KafkaHandlerSpec:
    """Validate a Kafka handler's options against the configured clusters.

    Pure: no broker is contacted. Raises :class:`HandlerOptionError` naming the option,
    the value and the valid choices.

    >>> # parse_kafka_options({"Topic": "alerts", "partitionalgorithm": "MURMUR2"}, config)
    >>> # KafkaHandlerSpec(cluster='main', topic='alerts', ..., partition_algorithm='murmur2')
    """
    values: dict[str, Any] = {}
    for key, value in options.items():
        name = _BY_LOWER.get(str(key).lower())
        if name is None:
            raise _fail(str(key), f"unknown option; valid options: {', '.join(OPTION_NAMES)}")
        if name in values:
            raise _fail(name, f"given twice (as {key!r} and another spelling)")
        values[name] = value

    cluster_id = _string("cluster", values.get("cluster") or "")
    try:
        cluster = _cluster_lookup(clusters)(cluster_id)
    except KapacityError as exc:
        raise _fail("cluster", str(exc)) from None

    topic = _string("topic", values.get("topic", ""))
    if not topic.strip():
        raise _fail("topic", "topic must not be empty")

    template = _string("template", values.get("template") or "")
    if template:
        parse_template(template)

    disable = _bool("disablePartitionById", values.get("disablePartitionById", False))

    algorithm = _string("partitionAlgorithm", values.get("partitionAlgorithm") or "")
    try:
        algorithm = canonical_partitioner_name(algorithm)
    except PartitionerError:
        raise _fail(
            "partitionAlgorithm",
            f"invalid partition algorithm {algorithm!r}; valid choices: {', '.join(PARTITIONER_NAMES)}",
        ) from None

    return KafkaHandlerSpec(cluster.id, topic, template, disable, algorithm)


def make_chooser(spec: KafkaHandlerSpec, client_partitioner: str | None = None) -> Chooser:
    """How a handler places messages: hash of the alert ID, or least bytes sent so far.

    ``client_partitioner`` is the algorithm the producer's client applies itself (see
    :attr:`~kapacity.kafka.producer.Transport.client_partitioner`): when it is the handler's,
    the client hashes the ID (same partition, no Python call per alert).
    """
    if spec.disable_partition_by_id:
        balancer = LeastBytesBalancer()

        def least_bytes(key: bytes, size: int, n: int) -> int:
            p = balancer.choose(n)
            balancer.record(p, len(key) + size)
            return p

        return least_bytes
    if spec.partition_algorithm == client_partitioner:
        return by_client_hash
    partition = get_partitioner(spec.partition_algorithm)
    if spec.partition_algorithm == "crc32":
        # The default algorithm, inlined (one call per alert instead of three); an empty
        # key still goes to the partitioner (a random partition). ``n`` comes from topic
        # metadata, which never reports fewer than one partition.
        def by_crc32(key: bytes, size: int, n: int) -> int:
            return crc32(key) % n if key else partition(key, n)

        return by_crc32

    def by_id(key: bytes, size: int, n: int) -> int:
        return partition(key, n)

    return by_id


# --- one producer per cluster ------------------------------------------------------------


def checked_producer_config(cluster: KafkaClusterConfig) -> dict[str, Any]:
    """librdkafka properties for ``cluster``, after checking the installed client can serve it.

    Raises :class:`KafkaSetupError` with the remedy (e.g. GSSAPI without Kerberos support),
    instead of librdkafka's obscure failure at connect time.
    """
    problems = check_runtime_support(cluster)
    if problems:
        raise KafkaSetupError(f"kafka cluster {cluster.id!r}: " + "; ".join(problems))
    try:
        return dict(producer_config(cluster))
    except KapacityError:
        raise
    except (ValueError, OSError) as exc:
        raise KafkaSetupError(f"kafka cluster {cluster.id!r}: {exc}") from None


#: librdkafka's upper bound for ``queue.buffering.max.messages``.
_MAX_CLIENT_QUEUE: Final = 2_147_483_647


def _default_producer_factory(cluster: KafkaClusterConfig, capacity: int) -> ClusterProducer:
    conf = checked_producer_config(cluster)
    # librdkafka's own queue must hold everything our buffer admits; otherwise messages
    # spill into the pending queue (still bounded and counted, but a slower path).
    conf["queue.buffering.max.messages"] = min(max(capacity, 100_000), _MAX_CLIENT_QUEUE)
    try:
        transport = ConfluentTransport(conf, name=f"kapacity-{cluster.id}")
    except KafkaException as exc:
        raise KafkaSetupError(f"kafka cluster {cluster.id!r}: cannot create the producer: {exc}") from None
    return ClusterProducer(cluster.id, transport, capacity=capacity, message_timeout=message_timeout_s(conf))


class ProducerPool:
    """The producers of a running kapacity: one per cluster id, shared by its handlers.

    A producer is created on first use and closed (flushed) when its last handler is
    closed, or by :meth:`close`.
    """

    def __init__(
        self,
        capacity: int = DEFAULT_BUFFER_CAPACITY,
        factory: Callable[[KafkaClusterConfig, int], ClusterProducer] = _default_producer_factory,
    ) -> None:
        self.capacity = capacity
        self._factory = factory
        self._lock = threading.Lock()
        self._producers: dict[str, ClusterProducer] = {}
        self._users: dict[str, int] = {}

    def acquire(self, cluster: KafkaClusterConfig) -> ClusterProducer:
        with self._lock:
            producer = self._producers.get(cluster.id)
            if producer is None:
                producer = self._factory(cluster, self.capacity)
                self._producers[cluster.id] = producer
            self._users[cluster.id] = self._users.get(cluster.id, 0) + 1
            return producer

    def release(self, cluster_id: str, timeout: float) -> bool:
        """One user fewer; the last one flushes and closes the producer within ``timeout``."""
        with self._lock:
            left = self._users.get(cluster_id, 0) - 1
            if left > 0:
                self._users[cluster_id] = left
                producer = None
            else:
                self._users.pop(cluster_id, None)
                producer = self._producers.pop(cluster_id, None)
        if producer is None:
            return True
        return producer.close(timeout)

    def stats(self) -> dict[tuple[str, str], TopicStats]:
        """Stats per (cluster, topic)."""
        with self._lock:
            producers = list(self._producers.items())
        return {(cid, topic): s for cid, p in producers for topic, s in p.all_stats().items()}

    def close(self, timeout: float) -> bool:
        with self._lock:
            producers = list(self._producers.values())
            self._producers.clear()
            self._users.clear()
        return all([p.close(timeout) for p in producers])


# --- the handler --------------------------------------------------------------------------


class KafkaHandler:
    """Sends each alert to ``spec.topic``: key = alert ID, value = JSON body or template."""

    def __init__(
        self,
        spec: KafkaHandlerSpec,
        producer: ClusterProducer,
        template: Template | None = None,
        on_close: Callable[[float], object] | None = None,
    ) -> None:
        self.spec = spec
        self._producer = producer
        self._template = template
        self._topic = spec.topic
        self._send = producer.send
        # The transactional producer (runtime) has no client partitioner: it chooses.
        self._choose = make_chooser(spec, getattr(producer, "client_partitioner", None))
        self._on_close = on_close
        self._closed = False

    @classmethod
    def create(
        cls, options: Mapping[str, Any], config: Config | Iterable[KafkaClusterConfig], pool: ProducerPool
    ) -> KafkaHandler:
        """Validate ``options`` and attach to the cluster's shared producer."""
        spec = parse_kafka_options(options, config)
        template = parse_template(spec.template) if spec.template else None
        cluster = _cluster_lookup(config)(spec.cluster)
        producer = pool.acquire(cluster)
        return cls(spec, producer, template, on_close=lambda t: pool.release(spec.cluster, t))

    def render(self, alert: AlertData) -> bytes:
        """The message value for ``alert``."""
        if self._template is None:
            return encode_alert_json(alert)
        return self._template.execute(alert).encode("utf-8")

    def handle(self, alert: AlertData, headers: Headers | None = None) -> None:
        """Send ``alert`` (non-blocking); ``headers`` go on its Kafka record (e.g. the
        runtime's ``kapacity-event-id`` for receivers that de-duplicate)."""
        # The hot path, kept flat (render inlined, attributes bound once).
        template = self._template
        try:
            value = encode_alert_json(alert) if template is None else template.execute(alert).encode("utf-8")
        except Exception as exc:  # noqa: BLE001 - one bad alert must not kill the caller
            what = "failed to execute alert template" if template is not None else "failed to encode the alert"
            self._producer.record_error(self._topic, f"alert {alert.id!r}: {what}: {exc}")
            return
        if headers is None:
            self._send(self._topic, alert.id.encode("utf-8"), value, self._choose)
        else:
            # Only ClusterProducer takes headers (the transactional producer adds its own).
            self._send(self._topic, alert.id.encode("utf-8"), value, self._choose, headers)

    def flush(self, timeout: float) -> bool:
        return self._producer.flush(timeout)

    def close(self, timeout: float) -> None:
        if self._closed:
            return
        self._closed = True
        if self._on_close is not None:
            self._on_close(timeout)
        else:
            self._producer.flush(timeout)

    def stats(self) -> dict[str, int]:
        """This (cluster, topic)'s counters, shared with other handlers writing there."""
        return self._producer.stats(self.spec.topic).as_dict()
