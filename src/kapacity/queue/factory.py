"""Build the configured queue: ``open_queue(config)``.

>>> from kapacity.config import parse_config
>>> q = open_queue(parse_config('data_dir = "/tmp/kq-doc"\\n[queue.embedded]\\ncleaner-interval = "0s"\\n'))
>>> type(q).__name__
'EmbeddedQueue'
>>> q.close()
"""

from __future__ import annotations

from pathlib import Path

from kapacity.config.model import Config
from kapacity.config.queue import QueueConfig
from kapacity.queue.base import Queue
from kapacity.queue.protection import FileStorage, Protector

__all__ = ["open_queue", "protector_for", "storage_root"]


def storage_root(data_dir: str | Path) -> Path:
    """Where stored large payloads live (Kestra keeps them under ``/_messages``)."""
    return Path(data_dir) / "_messages"


def protector_for(queue: QueueConfig, data_dir: str | Path) -> Protector | None:
    """The message protection of ``queue.kafka.message-protection`` (``None`` when unset)."""
    mp = queue.kafka.message_protection
    if mp.soft_limit is None and mp.hard_limit is None:
        return None
    storage = FileStorage(storage_root(data_dir)) if mp.soft_limit is not None else None
    return Protector(mp.soft_limit, mp.hard_limit, storage)


def open_queue(config: Config, *, instance_id: str | None = None) -> Queue:
    """The backend ``queue.type`` names; a Kafka queue creates/updates its topics first."""
    q = config.queue
    protector = protector_for(q, config.data_dir)
    if q.type == "kafka":
        from kapacity.queue.kafka import KafkaQueue

        return KafkaQueue(q.kafka, protector=protector, instance_id=instance_id)
    from kapacity.queue.embedded import EmbeddedQueue

    settings = q.kafka
    return EmbeddedQueue(
        q.sqlite_path(config.data_dir),
        naming=settings.naming(),
        topic_properties=settings.topic_properties,
        protector=protector,
        lease_ms=q.embedded.lease // 1_000_000,
        cleaner_interval_s=q.embedded.cleaner_interval / 1e9,
    )
