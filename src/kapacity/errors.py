"""The root of kapacity's error tree.

Every subsystem defines its errors in its own module and derives them from
:class:`KapacityError`::

    KapacityError
     ├── ConfigError            (kapacity.config.errors)
     ├── TickError              (kapacity.tick.errors)
     ├── TemplateError          (kapacity.gotmpl.errors)
     ├── HandlerError           (kapacity.handlers.errors)
     └── KafkaError             (kapacity.kafka.errors)

``retriable`` is read by retry code: an error that may go away by itself
(a broker that is not up yet) says so; one that will not (a bad option) does not.
"""

from __future__ import annotations


class KapacityError(Exception):
    """Base of every error kapacity raises on purpose."""

    retriable: bool = False
