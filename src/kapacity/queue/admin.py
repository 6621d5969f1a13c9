"""Start-up topic administration: create what is missing, update configs of what exists.

* A missing topic is created with its configured partitions, replication factor and configs.
* An existing topic gets its configs updated with *incremental* AlterConfigs (only keys whose
  value differs; legacy AlterConfigs would reset every other key). Its partition count is
  never changed — partitions decide key → partition placement.
* An unreachable cluster fails within :data:`STARTUP_TIMEOUT_S`; any refusal stops start-up
  with :class:`TopicAdminError` naming the topic and the broker's reason.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

# confluent-kafka does not re-export these in a way mypy sees; import their home modules.
from confluent_kafka.admin._config import AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.admin._resource import ResourceType
from confluent_kafka.cimpl import NewTopic

from kapacity.config.queue import KafkaQueueConfig
from kapacity.queue.errors import QueueUnavailableError, TopicAdminError
from kapacity.queue.kinds import Kind

__all__ = ["STARTUP_TIMEOUT_S", "EnsureReport", "TopicSpec", "ensure_topics", "topic_specs"]

#: How long start-up waits for the cluster to answer: long enough for a broker that is
#: still starting on a loaded machine, short enough that a wrong address fails visibly.
STARTUP_TIMEOUT_S: Final = 15.0


@dataclass(frozen=True)
class TopicSpec:
    kind: Kind
    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str]


@dataclass
class EnsureReport:
    created: list[str] = field(default_factory=list)
    updated: dict[str, dict[str, str]] = field(default_factory=dict)
    """Topic → the config keys changed."""


def topic_specs(settings: KafkaQueueConfig) -> list[TopicSpec]:
    """One spec per kind, from the configuration (pure)."""
    naming = settings.naming()
    return [
        TopicSpec(
            kind,
            naming.topic(kind),
            settings.partitions(kind),
            settings.replication_factor(kind),
            settings.topic_properties(kind),
        )
        for kind in Kind
    ]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        err: KafkaError = exc.args[0]
        return f"{err.name()}: {err.str()}"
    return str(exc)


def _code(exc: BaseException) -> int | None:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        code: int = exc.args[0].code()
        return code
    return None


def ensure_topics(
    client_properties: Mapping[str, str],
    specs: Sequence[TopicSpec],
    timeout: float = STARTUP_TIMEOUT_S,
) -> EnsureReport:
    """Create missing topics and update configs of existing ones; see the module doc."""
    admin = AdminClient(dict(client_properties))
    bootstrap = client_properties.get("bootstrap.servers", "?")
    deadline = time.monotonic() + timeout
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise QueueUnavailableError(
            f"cannot reach the Kafka cluster at {bootstrap} within {timeout:g}s: {_reason(exc)}"
        ) from None
    report = EnsureReport()
    missing = [s for s in specs if s.name not in existing]
    present = [s for s in specs if s.name in existing]
    if missing:
        futures = admin.create_topics(
            [NewTopic(s.name, s.partitions, s.replication_factor, config=dict(s.config)) for s in missing],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        for spec in missing:
            try:
                futures[spec.name].result(max(0.1, deadline - time.monotonic()))
                report.created.append(spec.name)
            except KafkaException as exc:
                if _code(exc) == KafkaError.TOPIC_ALREADY_EXISTS:
                    present.append(spec)  # another instance created it meanwhile
                    continue
                raise TopicAdminError(f'cannot create topic "{spec.name}": {_reason(exc)}') from None
    for spec in present:
        changed = _update_configs(admin, spec, max(0.1, deadline - time.monotonic()))
        if changed:
            report.updated[spec.name] = changed
    _wait_for_partitions(admin, [s for s in specs if s.name in report.created], deadline)
    return report


def _update_configs(admin: AdminClient, spec: TopicSpec, timeout: float) -> dict[str, str]:
    resource = ConfigResource(ResourceType.TOPIC, spec.name)
    current: dict[str, str | None] = {}
    try:
        described = admin.describe_configs([resource], request_timeout=timeout)[resource].result(timeout)
        current = {k: v.value for k, v in described.items()}
    except KafkaException:
        current = {}  # not describable: set every configured key
    changed = {k: v for k, v in spec.config.items() if current.get(k) != v}
    if not changed:
        return {}
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in changed.items()]
    alter = ConfigResource(ResourceType.TOPIC, spec.name, incremental_configs=entries)
    try:
        admin.incremental_alter_configs([alter], request_timeout=timeout)[alter].result(timeout)
    except KafkaException as exc:
        raise TopicAdminError(
            f'cannot update configs {sorted(changed)} of topic "{spec.name}": {_reason(exc)}'
        ) from None
    return changed


def _wait_for_partitions(admin: AdminClient, specs: Sequence[TopicSpec], deadline: float) -> None:
    """Producers need every partition's leader: wait until metadata shows them all."""
    pending = {s.name: s.partitions for s in specs}
    while pending:
        try:
            topics = admin.list_topics(timeout=max(0.1, deadline - time.monotonic())).topics
        except KafkaException as exc:
            raise QueueUnavailableError(f"lost the Kafka cluster during start-up: {_reason(exc)}") from None
        for name in list(pending):
            t = topics.get(name)
            if t is not None and t.error is None and len(t.partitions) >= pending[name]:
                del pending[name]
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise TopicAdminError(f"topics {sorted(pending)} did not get their partitions in time")
        time.sleep(0.05)
